import * as tf from '@tensorflow/tfjs';

/** `fused`: a JavaScript kernel inside tf.customGrad; `ops`: the portable tf-op parallel scan. */
export type ScanImplementation = 'fused' | 'ops';

/**
 * The fused kernels read and write tensor data in CPU memory, which is free on cpu and wasm
 * and a round trip on a GPU; `INTERLEAVE_SCAN=fused|ops` forces one (tests, benchmarks).
 */
export function defaultScanImplementation(): ScanImplementation {
  const forced = process.env.INTERLEAVE_SCAN;
  if (forced === 'fused' || forced === 'ops') return forced;
  return ['cpu', 'wasm'].includes(tf.getBackend()) ? 'fused' : 'ops';
}
