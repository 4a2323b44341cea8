import type { BlockDefinition } from '@interleave/core';
import { describe, expect, it } from 'vitest';
import { glaBlock } from '../src/gla.js';
import { mamba2Block } from '../src/mamba2.js';

// As block-flops.test.ts: each count written out term by term from the block's forward code
// (a linear in→out is 2·in·out forward, 4·in·out backward; pointwise ops 1 and 2), with the
// chunked scan counted as ops/chunked-linear-attention.ts computes it.

function flopsOf<Config>(block: BlockDefinition<Config>, raw: Record<string, unknown>, dModel: number, seqLen = 16) {
  return block.flops(block.schema.parse(raw), { dModel, seqLen });
}

describe('chunked blocks: FLOPs per token', () => {
  it('mamba2: d_model 4, expand 2, headdim 4 (2 heads), d_state 2, chunks of 4', () => {
    // Per head, N = 2 keys, P = 4 values, C = 4: running sum 2C, scores 2CN + 5C, ·V 2CP,
    // kᵀv and q·S 4NP, decays 3N + 2, recurrence 2NP/C, final add P.
    const scanPerHead = 2 * 4 + (2 * 4 * 2 + 5 * 4) + 2 * 4 * 4 + 4 * 2 * 4 + (3 * 2 + 2) + (2 * 2 * 4) / 4 + 4;
    const forward =
      2 * 4 * (8 + 12 + 2) + // in_proj → z [8], xBC [8 + 2·2], dt [2 heads]
      12 * (2 * 4 + 1) + // conv1d over x, B, C
      12 * 2 + // silu
      (2 * 2 + 8 + 2 * 2) + // softplus(dt + bias), Δ·x, Δ·A and exp(A_log)
      2 * scanPerHead +
      8 * 2 + // + D ⊙ x
      (8 * 3 + 8 * 4 + 3) + // y ⊙ silu(z), RMSNorm over E
      2 * 8 * 4; // out_proj
    const backward =
      4 * 4 * 22 + 12 * (4 * 4 + 1) + 2 * 12 * 2 + 2 * 16 + 2 * 2 * scanPerHead + 2 * 16 + 2 * 59 + 4 * 8 * 4;
    expect(forward).toBe(711);
    expect(flopsOf(mamba2Block, { d_state: 2, headdim: 4, chunk_size: 4 }, 4)).toEqual({ forward, backward });
  });

  it('gla: d_model 8, 2 heads (d_k 2, d_v 4), gate rank 2; the chunk is capped at the sequence length', () => {
    // Per head, C = 4 (chunk_size 16 > L = 4): running sum 2C·d_k, per-feature scores 7C·d_k,
    // ·V 2C·d_v, kᵀv and q·S 4·d_k·d_v, decays 5·d_k, recurrence 2·d_k·d_v/C, final add d_v.
    const perHead = 2 * 4 * 2 + 7 * 4 * 2 + 2 * 4 * 4 + 4 * 2 * 4 + 5 * 2 + (2 * 2 * 4) / 4 + 4;
    const forward =
      2 * 8 * (2 * 4 + 2 * 8) + // q, k [4], v, g [8]
      2 * 8 * 2 + // gk_proj.0
      (2 * 2 * 4 + 4) + // gk_proj.1 with bias
      (3 * 4 + 4) + // logsigmoid, ÷ normaliser; q scale
      2 * perHead +
      (4 * 8 + 3 * 2 + 3 * 8) + // RMSNorm per head, ⊙ swish(g)
      2 * 8 * 8; // o_proj
    const backward =
      4 * 8 * 24 + 4 * 8 * 2 + (4 * 2 * 4 + 4) + 2 * 16 + 2 * 2 * perHead + 2 * (32 + 6 + 24) + 4 * 8 * 8;
    expect(flopsOf(glaBlock, { heads: 2, gate_low_rank_dim: 2 }, 8, 4)).toEqual({ forward, backward });
  });
});
