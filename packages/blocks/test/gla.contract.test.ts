import { glaBlock } from '../src/gla.js';
import { runBlockContract } from '../src/testing/index.js';

// Chunks of 4 and 5 over the contract's 12 tokens: several chunks, and a padded last one.
// norm_eps 0.1: the per-head RMSNorm of the tiny gradient-check model (d_v 1–4 per head) sees
// outputs near zero at the first tokens (o₀ = (q₀·k₀) v₀ changes sign with q₀·k₀), where
// rmsnorm(o) with ε = 1e-5 turns over within the finite-difference step ε = 1e-2 (q_proj's
// numeric gradient then misses by 20%); the analytic gradients are checked exactly against the
// step form in chunked-recurrences.test.ts.
const backends = ['cpu', 'wasm'] as const;

runBlockContract(glaBlock, { heads: 2, gate_low_rank_dim: 4, chunk_size: 4, norm_eps: 0.1 }, { backends });
runBlockContract(
  glaBlock,
  { heads: 4, expand_k: 1, expand_v: 0.5, chunk_size: 5, norm_eps: 0.1 },
  { backends: ['wasm'] },
);
