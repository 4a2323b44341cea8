import { InterleaveError } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { HOST_BACKENDS } from './kernels/host-memory.js';
import { currentBackendHas } from './kernels/register-once.js';

/** `fused`: the registered tfjs kernel (cpu, wasm, tensorflow and webgpu); `ops`: the portable tf-op parallel scan. */
export type ScanImplementation = 'fused' | 'ops';

/**
 * The fused kernel where the current backend has one registered under `kernelName`, else the
 * tf-op scan; `INTERLEAVE_SCAN=fused|ops` forces one (tests, benchmarks).
 */
export function defaultScanImplementation(kernelName: string): ScanImplementation {
  const forced = process.env.INTERLEAVE_SCAN;
  if (forced === 'fused' || forced === 'ops') return forced;
  return currentBackendHas(kernelName) ? 'fused' : 'ops';
}

export function assertFusedAvailable(kernelName: string): void {
  if (!currentBackendHas(kernelName)) {
    throw new InterleaveError(
      `the fused scan kernel '${kernelName}' is registered for the ${[...HOST_BACKENDS, 'webgpu'].join(', ')} backends, not for '${tf.getBackend()}' (use INTERLEAVE_SCAN=ops)`,
    );
  }
}
