import { selectBackend } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';

/**
 * Puts tfjs on the `webgpu` backend for the WGSL kernel tests, as `backend: webgpu` would: the
 * GPU where there is one, else Dawn's OpenGL backend on Mesa's llvmpipe in compatibility mode
 * (lower limits, e.g. a 128 MiB storage binding: it checks correctness, never speed). Where
 * neither starts, the error says what to install (`scripts/install-webgpu-ci.sh`).
 */
export async function startWebgpuBackend(): Promise<void> {
  if (tf.getBackend() === 'webgpu') return;
  await selectBackend('webgpu', 'the WGSL kernel tests');
}
