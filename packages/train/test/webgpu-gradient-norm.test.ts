import { SeededRandom } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { startWebgpuBackend } from '../../blocks/test/support/webgpu-device.js';
import { AdamW } from '../src/optimizer/adamw.js';
import { ADAMW_KERNEL } from '../src/optimizer/adamw-wgsl.js';
import { clipByGlobalNorm } from '../src/optimizer/clip-gradients.js';
import { fusedGradientScale, fusedGradientScaleAvailable } from '../src/optimizer/gradient-norm-wgsl.js';

/**
 * The global gradient norm and clip factor in WGSL (src/optimizer/gradient-norm-wgsl.ts) on
 * webgpu against float64, and AdamW steps that take the factor from it against the tf-op clip
 * and update on the same backend.
 */

beforeAll(async () => {
  await startWebgpuBackend();
});

const rng = new SeededRandom(11, 'webgpu-gradient-norm');
const draw = (size: number, std: number) => Float32Array.from({ length: size }, () => rng.normal(0, std));

function norm64(values: readonly Float32Array[]): number {
  let sum = 0;
  for (const array of values) for (const value of array) sum += value * value;
  return Math.sqrt(sum);
}

/** [lr, 1 − lr·wd, 1 − β1^t, 1 − β2^t, s] as AdamW.stepScalars writes them (s = 1 there). */
const STEP = [3e-3, 0.99, 0.1, 0.05, 0.5];

async function scalarsFor(arrays: readonly Float32Array[], maxNorm: number | null): Promise<Float32Array> {
  const gradients = arrays.map((array) => tf.tensor1d(array));
  const step = tf.tensor1d(STEP);
  const before = tf.memory().numTensors;
  expect(fusedGradientScaleAvailable(gradients)).toBe(true);
  const scalars = fusedGradientScale(gradients, maxNorm, step);
  expect(tf.memory().numTensors).toBe(before + 1);
  const values = (await scalars.data()) as Float32Array;
  tf.dispose([scalars, step, ...gradients]);
  return values;
}

describe('gradient norm and clip factor in WGSL = float64', () => {
  // Chunk edges (2,047 / 2,048 / 2,049 values), one value, a tensor over many chunks; 20 tensors
  // take three summing dispatches and the scale kernel.
  const sizes = [1, 2047, 2048, 2049, 70_000, ...Array.from({ length: 15 }, (_, k) => 37 * (k + 1))];

  it('writes the step scalars, the clip factor times s, and the norm', async () => {
    const arrays = sizes.map((size) => draw(size, 0.02));
    const expected = norm64(arrays);
    for (const maxNorm of [null, 1e-3, 1e6]) {
      const got = await scalarsFor(arrays, maxNorm);
      expect(Array.from(got.slice(0, 4))).toEqual(Array.from(Float32Array.from(STEP.slice(0, 4))));
      expect(Math.abs((got[5] as number) - expected) / expected, `norm, maxNorm ${maxNorm}`).toBeLessThan(1e-6);
      const factor = maxNorm === null ? 1 : Math.min(1, maxNorm / (expected + 1e-6));
      expect((got[4] as number) / 0.5, `factor, maxNorm ${maxNorm}`).toBeCloseTo(factor, 6);
    }
  });

  it('sums partial sums again when more than six summing dispatches ran (50 tensors)', async () => {
    const arrays = Array.from({ length: 50 }, (_, k) => draw(3 + k * 101, 1));
    const expected = norm64(arrays);
    const got = await scalarsFor(arrays, null);
    expect(Math.abs((got[5] as number) - expected) / expected).toBeLessThan(1e-6);
  });

  it('repeats bit for bit', async () => {
    const arrays = sizes.map((size) => draw(size, 1));
    expect(Array.from(await scalarsFor(arrays, 0.3))).toEqual(Array.from(await scalarsFor(arrays, 0.3)));
  });
});

describe('AdamW with the clip factor from the GPU = tf-op clip and update', () => {
  const OPTIONS = { betas: [0.9, 0.95] as const, eps: 1e-8, weightDecay: 0.1 };
  const shapes = [[17, 33], [300], [5]];

  async function twoSteps(initial: Float32Array[], gradients: Float32Array[][], fused: boolean) {
    const parameters = shapes.map((shape, k) => ({
      name: `p${k}`,
      decay: k === 0,
      variable: tf.tidy(() =>
        tf.variable(tf.tensor(initial[k] as Float32Array, shape), true, `clip-test-${fused}-${k}-${rng.next()}`),
      ),
    }));
    const optimizer = new AdamW(parameters, OPTIONS);
    const norms: number[] = [];
    for (const [step, lr] of [1e-2, 5e-3].entries()) {
      const byName = Object.fromEntries(
        shapes.map((shape, k) => [`p${k}`, tf.tensor((gradients[step] as Float32Array[])[k] as Float32Array, shape)]),
      );
      if (fused) {
        const stepScalars = tf.tensor1d(optimizer.stepScalars(lr, optimizer.stepCount + 1));
        const scalars = fusedGradientScale(Object.values(byName), 0.5, stepScalars);
        optimizer.apply(byName, lr, scalars);
        norms.push((await scalars.data())[5] as number);
        tf.dispose([stepScalars, scalars]);
      } else {
        const clipped = clipByGlobalNorm(byName, 0.5);
        optimizer.apply(clipped.gradients, lr);
        norms.push((await clipped.norm.data())[0] as number);
        tf.dispose([...Object.values(clipped.gradients), clipped.norm]);
      }
      tf.dispose(Object.values(byName));
    }
    const values = await Promise.all(parameters.map(async ({ variable }) => (await variable.data()) as Float32Array));
    optimizer.dispose();
    for (const { variable } of parameters) variable.dispose();
    return { values, norms };
  }

  it('gives the same parameters after two clipped steps', async () => {
    const sizeOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
    const initial = shapes.map((shape) => draw(sizeOf(shape), 1));
    const gradients = [0, 1].map(() => shapes.map((shape) => draw(sizeOf(shape), 1)));
    const before = tf.memory().numTensors;
    const fused = await twoSteps(initial, gradients, true);
    expect(tf.memory().numTensors).toBe(before);
    const kernel = tf.getKernel(ADAMW_KERNEL, 'webgpu') as tf.KernelConfig;
    tf.unregisterKernel(ADAMW_KERNEL, 'webgpu');
    let ops: Awaited<ReturnType<typeof twoSteps>>;
    try {
      ops = await twoSteps(initial, gradients, false);
    } finally {
      tf.registerKernel(kernel);
    }
    // The norms (≈ 24, so both steps clip hard) agree to float32 summation order.
    for (const [step, norm] of fused.norms.entries()) expect(norm).toBeCloseTo(ops.norms[step] as number, 3);
    fused.values.forEach((array, k) => {
      const want = ops.values[k] as Float32Array;
      let diff = 0;
      for (let i = 0; i < want.length; i++) diff = Math.max(diff, Math.abs((array[i] as number) - (want[i] as number)));
      expect(diff, `parameter p${k}`).toBeLessThan(1e-6);
    });
  });
});
