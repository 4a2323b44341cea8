import { selectBackend } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll } from 'vitest';

/**
 * Runs the enclosing vitest file (or `describe`) on the `webgpu` backend: the GPU where there is
 * one, else Dawn's OpenGL backend on Mesa's llvmpipe (compatibility mode, CPU speed). Where
 * neither starts, every test fails with one line saying what to install
 * (`scripts/install-webgpu-ci.sh`). Restores the previous backend afterwards.
 * Returns a getter for the backend's detail line, e.g. to tell the software device apart.
 */
export function useWebgpuBackend(): () => string {
  let previous: string | undefined;
  let detail = '';
  beforeAll(async () => {
    previous = tf.getBackend();
    detail = (await selectBackend('webgpu', 'useWebgpuBackend')).detail;
  });
  afterAll(async () => {
    if (previous !== undefined) await tf.setBackend(previous);
  });
  return () => detail;
}
