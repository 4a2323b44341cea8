import { SeededRandom } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { rmsNormWithOps } from '../src/rms-norm.js';
import { fusedRmsNorm } from '../src/webgpu/rms-norm-wgsl.js';
import { startWebgpuBackend } from './support/webgpu-device.js';

const EPS = 1e-5;

/** y = x·r·w with r = 1/sqrt(mean x² + eps) per row, and the gradients of Σ y⊙u, in float64. */
function reference(x: Float32Array, w: Float32Array, u: Float32Array, width: number) {
  const rows = x.length / width;
  const y = new Float64Array(x.length);
  const dx = new Float64Array(x.length);
  const dw = new Float64Array(width);
  for (let row = 0; row < rows; row++) {
    const at = (i: number) => row * width + i;
    let squares = 0;
    for (let i = 0; i < width; i++) squares += (x[at(i)] as number) ** 2;
    const r = 1 / Math.sqrt(squares / width + EPS);
    let projection = 0;
    for (let i = 0; i < width; i++) projection += (u[at(i)] as number) * (w[i] as number) * (x[at(i)] as number);
    for (let i = 0; i < width; i++) {
      const xi = x[at(i)] as number;
      y[at(i)] = xi * r * (w[i] as number);
      dw[i] = (dw[i] as number) + (u[at(i)] as number) * xi * r;
      dx[at(i)] = r * (u[at(i)] as number) * (w[i] as number) - (xi * r ** 3 * projection) / width;
    }
  }
  return { y, dx, dw };
}

function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs((actual[i] as number) - (expected[i] as number)));
    scale = Math.max(scale, Math.abs(expected[i] as number));
  }
  return diff / scale;
}

beforeAll(async () => {
  await startWebgpuBackend();
});

describe('RMSNorm WGSL kernel on webgpu = tf-op RMSNorm = float64 reference', () => {
  it.each([
    ['rows of 70 (one partial pass of the 64 threads)', [2, 5, 70]],
    ["the hybrid's width of 256", [3, 256]],
    ['a width below the workgroup', [4, 3, 7]],
    ['600 rows: three blocks of the weight gradient, 70 channels over two workgroups', [3, 200, 70]],
  ])('agrees in value and both gradients (%s)', async (_label, shape) => {
    const width = shape.at(-1) as number;
    const size = shape.reduce((a, b) => a * b, 1);
    const rng = new SeededRandom(3, 'webgpu-rms-norm');
    const x = Float32Array.from({ length: size }, () => rng.normal(0, 2));
    const w = Float32Array.from({ length: width }, () => rng.normal(1, 0.3));
    const u = Float32Array.from({ length: size }, () => rng.normal());
    const expected = reference(x, w, u, width);
    for (const [label, norm] of [
      ['fused', fusedRmsNorm],
      ['ops', rmsNormWithOps],
    ] as const) {
      const before = tf.memory().numTensors;
      const outputs = tf.tidy(() => {
        const xt = tf.tensor(x, shape);
        const wt = tf.tensor1d(w);
        const ut = tf.tensor(u, shape);
        const { value, grads } = tf.valueAndGrads((p: tf.Tensor, q: tf.Tensor) => norm(p, q, EPS).mul(ut).sum())([
          xt,
          wt,
        ]);
        return [norm(xt, wt, EPS), value, ...grads];
      });
      const [y, , dx, dw] = (await Promise.all(outputs.map((t) => t.data()))) as Float32Array[];
      tf.dispose(outputs);
      expect(tf.memory().numTensors, `${label} leaks`).toBe(before);
      expect(relativeError(y as Float32Array, expected.y), `${label} y`).toBeLessThan(1e-5);
      expect(relativeError(dx as Float32Array, expected.dx), `${label} dx`).toBeLessThan(1e-5);
      expect(relativeError(dw as Float32Array, expected.dw), `${label} dw`).toBeLessThan(1e-5);
    }
  });
});
