import { deltanetBlock } from '../src/deltanet.js';
import { runBlockContract } from '../src/testing/index.js';

// Chunks of 4 over the contract's 12 tokens (3 chunks) and of 8 (a padded last chunk).
// norm_eps 0.1: as for GLA, the per-head RMSNorm of the tiny gradient-check model (d_v 1–2 per
// head) sees outputs near zero, where rmsnorm with ε = 1e-5 turns over within the
// finite-difference step; the rule's own gradients are checked exactly against the step form
// in chunked-recurrences.test.ts.
const backends = ['cpu', 'wasm'] as const;

runBlockContract(deltanetBlock, { heads: 2, chunk_size: 4, norm_eps: 0.1 }, { backends });
runBlockContract(
  deltanetBlock,
  {
    heads: 2,
    expand_v: 0.5,
    use_gate: true,
    use_short_conv: false,
    allow_neg_eigval: true,
    chunk_size: 8,
    norm_eps: 0.1,
  },
  { backends: ['wasm'] },
);
