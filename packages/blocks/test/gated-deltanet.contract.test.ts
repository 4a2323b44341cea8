import { gatedDeltanetBlock } from '../src/gated-deltanet.js';
import { runBlockContract } from '../src/testing/index.js';

// Chunks of 4 over the contract's 12 tokens (3 chunks) and of 8 (a padded last chunk); norm_eps
// 0.1 for the finite-difference check, as in deltanet.contract.test.ts (which says why).
const backends = ['cpu', 'wasm'] as const;

runBlockContract(gatedDeltanetBlock, { heads: 2, chunk_size: 4, norm_eps: 0.1 }, { backends });
runBlockContract(
  gatedDeltanetBlock,
  { heads: 2, head_dim: 3, expand_v: 1, conv_bias: true, use_gate: false, chunk_size: 8, norm_eps: 0.1 },
  { backends: ['wasm'] },
);
