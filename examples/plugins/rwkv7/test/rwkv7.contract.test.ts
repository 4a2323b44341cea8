import { runBlockContract } from '@interleave/blocks/testing';
import { describe, expect, it } from 'vitest';
import { rwkv7Block, rwkv7Layout, rwkv7Schema } from '../src/index.js';

describe('rwkv7 layout', () => {
  it("follows fla's sizing rules: head_dim 64, LoRA ranks from √d_model", () => {
    const layout = rwkv7Layout(rwkv7Schema.parse({}), 1024);
    // fla's RWKV7Attention(hidden_size=1024): 16 heads, decay/a rank 64, gate rank 160, (v rank 32).
    expect(layout).toEqual({ heads: 16, headDim: 64, decayRank: 64, aRank: 64, gateRank: 160 });
    expect(rwkv7Layout(rwkv7Schema.parse({ heads: 2 }), 64)).toMatchObject({ heads: 2, headDim: 32 });
  });

  it('says which width does not divide', () => {
    expect(() => rwkv7Layout(rwkv7Schema.parse({}), 48)).toThrow('rwkv7: d_model 48 is not divisible by head_dim 64');
    expect(() => rwkv7Layout(rwkv7Schema.parse({ heads: 5 }), 16)).toThrow('by heads 5');
  });
});

// The block contract: shapes, causality, step (recurrent form) = forward (chunked form), gradients
// against finite differences, state size, no leaked tensors, same seed → same parameters.
// `fan_in` init, so that o_proj and the LoRA down-projections are not zero and every path shows.
const small = { heads: 2, decay_low_rank_dim: 4, a_low_rank_dim: 3, gate_low_rank_dim: 5, init: 'fan_in' };
runBlockContract(rwkv7Block, { ...small, chunk_size: 4 }, { backends: ['cpu', 'wasm'] });
runBlockContract(rwkv7Block, { ...small, heads: 1, chunk_size: 8 }, { backends: ['wasm'], seqLen: 19 });
// The reference init: o_proj is zero, so the output is 0 until trained and the causality check
// would be vacuous; the build, step, state-size and leak checks still hold.
runBlockContract(rwkv7Block, { heads: 2, decay_low_rank_dim: 4 }, { backends: ['cpu'], causality: false });
