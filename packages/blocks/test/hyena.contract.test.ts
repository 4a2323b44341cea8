import { afterAll, beforeAll, describe } from 'vitest';
import { hyenaBlock } from '../src/hyena.js';
import { runBlockContract } from '../src/testing/index.js';

// The default path on each backend: DFT matmuls on cpu and wasm (see hyena/long-convolution.ts).
runBlockContract(hyenaBlock, { filter_order: 8, max_len: 32 }, { backends: ['cpu', 'wasm'] });
// Order 3 (two long convolutions, interleaved filter channels), more bands, a shorter kernel.
runBlockContract(
  hyenaBlock,
  { order: 3, filter_order: 6, emb_dim: 5, num_inner_mlps: 1, short_filter_order: 2, max_len: 16, shift: 0.1 },
  { backends: ['wasm'] },
);

// The FFT path (what webgpu and tensorflow take), on cpu, which has the kernels.
describe('hyena with the FFT long convolution', () => {
  beforeAll(() => {
    process.env.INTERLEAVE_LONG_CONV = 'fft';
  });
  afterAll(() => {
    delete process.env.INTERLEAVE_LONG_CONV;
  });
  runBlockContract(hyenaBlock, { order: 3, filter_order: 8, max_len: 16 }, { backends: ['cpu'] });
});
