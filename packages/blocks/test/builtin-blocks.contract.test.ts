import { fullAttentionBlock, mambaBlock, slidingWindowAttentionBlock } from '../src/index.js';
import { runBlockContract } from '../src/testing/index.js';

// Every built-in block goes through the same contract a plugin author runs: causality,
// step = forward, finite-difference gradients and no leaked tensors, on cpu and wasm
// (wasm exercises the fused scan and the embedding/matmul workarounds).
const backends = ['cpu', 'wasm'] as const;

runBlockContract(mambaBlock, { d_state: 4, d_conv: 4, expand: 2 }, { backends });
runBlockContract(mambaBlock, { d_state: 8, d_conv: 2, expand: 1, dt_rank: 3 }, { backends: ['wasm'] });
runBlockContract(slidingWindowAttentionBlock, { window: 4, heads: 2 }, { backends, seqLen: 12 });
runBlockContract(slidingWindowAttentionBlock, { window: 1, heads: 4, kv_heads: 1 }, { backends: ['wasm'] });
runBlockContract(slidingWindowAttentionBlock, { window: null, heads: 4, kv_heads: 2 }, { backends: ['wasm'] });
runBlockContract(fullAttentionBlock, { heads: 2 }, { backends });
