import { fullAttentionBlock, mambaBlock, slidingWindowAttentionBlock } from '../src/index.js';
import { runBlockContract } from '../src/testing/index.js';

// The block contract on `webgpu`. Without a GPU (CI) that is Dawn's OpenGL backend on Mesa's
// llvmpipe: slow, so the shapes stay small; where it cannot start, each test fails with one
// line naming scripts/install-webgpu-ci.sh.
const backends = ['webgpu'] as const;
const small = { backends, seqLen: 8, timeout: 300_000 };

runBlockContract(mambaBlock, { d_state: 4, d_conv: 4, expand: 2 }, small);
runBlockContract(slidingWindowAttentionBlock, { window: 4, heads: 2 }, small);
runBlockContract(fullAttentionBlock, { heads: 2 }, small);
