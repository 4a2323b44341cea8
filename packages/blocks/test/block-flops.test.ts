import { averageVisibleKeys, type BlockDefinition } from '@interleave/core';
import { describe, expect, it } from 'vitest';
import { tokenShiftBlock } from '../../../configs/plugins/token-shift.js';
import {
  fullAttentionBlock,
  gatedMlp,
  hyenaBlock,
  mambaBlock,
  rglruBlock,
  rmsNorm,
  slidingWindowAttentionBlock,
} from '../src/index.js';

// Each expected count is written out term by term from the block's forward code, with the
// conventions of core's flop-count.ts: a linear in→out costs 2·in·out forward (+out for a
// bias) and 4·in·out backward (+out); a pointwise op 1 forward and 2 backward.

function flopsOf<Config>(block: BlockDefinition<Config>, raw: Record<string, unknown>, dModel: number, seqLen = 16) {
  return block.flops(block.schema.parse(raw), { dModel, seqLen });
}

describe('block FLOPs per token', () => {
  it('mamba: d_model 4, expand 2, d_state 2, d_conv 4 (d_inner 8, dt_rank 1)', () => {
    const forward =
      2 * 4 * 16 + // in_proj [16, 4]
      8 * (2 * 4 + 1) + // conv1d: 4 taps and a bias per channel
      8 * 2 + // silu: sigmoid, multiply
      2 * 8 * (1 + 2 + 2) + // x_proj [dt_rank + 2·d_state, 8]
      (2 * 1 * 8 + 8) + // dt_proj [8, 1] + bias
      8 + // softplus
      8 * (1 + 7 * 2) + // scan: Δ·x per channel, 7 ops per state element
      8 * 2 + // + D ⊙ x
      8 * 3 + // ⊙ silu(z)
      2 * 8 * 4; // out_proj [4, 8]
    const backward =
      4 * 4 * 16 +
      8 * (4 * 4 + 1) +
      8 * 2 * 2 +
      4 * 8 * 5 +
      (4 * 1 * 8 + 8) +
      8 * 2 +
      8 * 2 * 20 + // the reverse-time scan: 20 ops per state element
      8 * 2 * 2 +
      8 * 3 * 2 +
      4 * 8 * 4;
    expect(forward).toBe(552);
    expect(flopsOf(mambaBlock, { d_state: 2, d_conv: 4, expand: 2 }, 4)).toEqual({ forward, backward });
  });

  it('rglru: d_model 4, d_rnn 6 in 2 heads, conv_width 4', () => {
    const forward =
      2 * 4 * 12 +
      12 + // linear_y, linear_x [6, 4] each, with biases
      6 * (2 * 4 + 1) + // conv_1d
      2 * (2 * 3 * 6 + 6) + // a_gate and input_gate: per head [3, 3] each, with biases
      6 * 11 + // recurrence coefficients
      6 * 2 + // h = a·h + b
      6 * (5 + 1) + // ⊙ gelu(gate branch)
      (2 * 6 * 4 + 4); // linear_out
    const backward =
      4 * 4 * 12 +
      12 +
      6 * (4 * 4 + 1) +
      2 * (4 * 3 * 6 + 6) +
      6 * 11 * 2 +
      6 * 3 + // g = dy + carry, g·h_{t−1}, carry = g·a
      6 * 6 * 2 +
      (4 * 6 * 4 + 4);
    expect(flopsOf(rglruBlock, { d_rnn: 6, heads: 2, conv_width: 4 }, 4)).toEqual({ forward, backward });
  });

  it('hyena: d_model 4, order 2, short filter 3, at L = 8 (FFT of size 16)', () => {
    const fft = 2.5 * 16 * Math.log2(16); // one real transform of size 2L
    const convForward = (2 * fft + 6 * 9) / 8; // per channel: rfft, 9 complex products, irfft
    const convBackward = (2 * fft + 14 * 9) / 8; // rfft(dy), two conjugate products + batch sum, irfft
    const forward =
      2 * 4 * 12 +
      12 + // in_proj [3·4, 4] + bias
      12 * (2 * 3 + 1) + // short conv
      4 + // z ⊙ x_1
      4 * convForward + // long convolution
      4 * 2 + // + bias ⊙ z
      4 + // ⊙ x_0
      (2 * 4 * 4 + 4); // out_proj
    const backward =
      4 * 4 * 12 + 12 + 12 * (4 * 3 + 1) + 4 * 2 + 4 * convBackward + 4 * 2 * 2 + 4 * 2 + (4 * 4 * 4 + 4);
    const counted = flopsOf(hyenaBlock, { order: 2, short_filter_order: 3 }, 4, 8);
    expect(counted.forward).toBeCloseTo(forward, 9);
    expect(counted.backward).toBeCloseTo(backward, 9);
    expect(forward).toBeCloseTo(431, 9);
  });

  it('swa: d_model 8, 2 heads sharing 1 KV head, window 3, at L = 5', () => {
    const keys = (1 + 2 + 3 + 3 + 3) / 5; // keys visible to queries 0..4
    const perHead = {
      forward: 2 * 4 * keys + 5 * keys + 2 * keys * 4,
      backward: 4 * 4 * keys + 10 * keys + 4 * keys * 4,
    };
    const forward =
      2 * 8 * 8 + // q_proj
      2 * (2 * 8 * 4) + // k_proj, v_proj (one KV head of 4)
      (3 * (8 + 4) + 8) + // RoPE on q and k, 1/√d on q
      2 * perHead.forward +
      2 * 8 * 8; // o_proj
    const backward = 4 * 8 * 8 + 2 * (4 * 8 * 4) + 2 * (3 * 12 + 8) + 2 * perHead.backward + 4 * 8 * 8;
    const counted = flopsOf(slidingWindowAttentionBlock, { window: 3, heads: 2, kv_heads: 1 }, 8, 5);
    expect(counted.forward).toBeCloseTo(forward, 9);
    expect(counted.backward).toBeCloseTo(backward, 9);
  });

  it('rms norm, gated MLP and the token-shift plugin', () => {
    expect(rmsNorm.flops(4)).toEqual({ forward: 4 * 4 + 3, backward: 2 * (4 * 4 + 3) });
    // hidden 8: gate and up [8, 4], act ⊙ up, down [4, 8]
    expect(gatedMlp.flops(4, { expansion: 2, activation: 'gelu' })).toEqual({
      forward: 2 * (2 * 4 * 8) + 8 * (5 + 1) + 2 * 8 * 4,
      backward: 2 * (4 * 4 * 8) + 2 * 8 * (5 + 1) + 4 * 8 * 4,
    });
    expect(gatedMlp.flops(4, { expansion: 2, activation: 'silu' }).forward).toBe(2 * (2 * 4 * 8) + 8 * 3 + 2 * 8 * 4);
    expect(flopsOf(tokenShiftBlock, {}, 4)).toEqual({ forward: 2 * (2 * 4 * 4) + 4, backward: 2 * (4 * 4 * 4) + 8 });
  });
});

describe('FLOPs and the sequence length', () => {
  const lengths = [16, 64, 256, 1024];

  it('grow with L for full attention, stop growing past the window for swa, and not at all for recurrences', () => {
    const at = <Config>(block: BlockDefinition<Config>, raw: Record<string, unknown>) =>
      lengths.map((seqLen) => flopsOf(block, raw, 16, seqLen).forward);
    const full = at(fullAttentionBlock, { heads: 2 });
    for (let i = 1; i < full.length; i++) expect(full[i]).toBeGreaterThan(full[i - 1] as number);
    // the QK and AV products grow by 2·2·d_head·ΔK̄ per head, softmax by 5·ΔK̄
    const growth = ((full[1] as number) - (full[0] as number)) / (((64 + 1) / 2 - (16 + 1) / 2) * 2);
    expect(growth).toBeCloseTo(2 * 8 + 5 + 2 * 8, 9);

    const windowed = at(slidingWindowAttentionBlock, { heads: 2, window: 32 });
    expect(windowed[0]).toBe(full[0]); // L ≤ window: the same as full attention
    expect(windowed[1]).toBeLessThan(full[1] as number);
    expect((windowed[3] as number) - (windowed[2] as number)).toBeLessThan(0.05 * (windowed[2] as number));

    for (const flat of [at(mambaBlock, {}), at(rglruBlock, {})]) expect(new Set(flat).size).toBe(1);
    // Hyena's FFT convolution grows like log L, far slower than attention.
    const hyena = at(hyenaBlock, { max_len: 1024 });
    expect(hyena[3]).toBeGreaterThan(hyena[0] as number);
    expect((hyena[3] as number) / (hyena[0] as number)).toBeLessThan(1.5);
  });

  it('averages the visible keys exactly over the causal positions', () => {
    for (const [seqLen, window] of [
      [1, 1],
      [5, 3],
      [7, 1],
      [10, 10],
      [10, 25],
      [9, null],
    ] as const) {
      let total = 0;
      for (let t = 0; t < seqLen; t++) total += Math.min(t + 1, window ?? Number.POSITIVE_INFINITY);
      expect(averageVisibleKeys(seqLen, window)).toBeCloseTo(total / seqLen, 12);
    }
    expect(averageVisibleKeys(63, null)).toBe(32);
  });
});
