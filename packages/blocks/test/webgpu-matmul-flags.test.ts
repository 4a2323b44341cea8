import { matmul } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { startWebgpuBackend } from './support/webgpu-device.js';

/**
 * `matmul` passes transpose flags straight to tfjs on webgpu (packages/core/src/ops/matmul.ts);
 * its value and both gradients must equal the explicit-transpose form the cpu backend runs, for
 * every flag combination, with and without a batch axis. Operands hold more than 1,000 floats so
 * that tfjs-webgpu does not hand the ops to the CPU.
 */
beforeAll(async () => {
  await startWebgpuBackend();
});

interface Outcome {
  value: Float32Array;
  dA: Float32Array;
  dB: Float32Array;
}

async function productAndGradients(aShape: number[], bShape: number[], tA: boolean, tB: boolean): Promise<Outcome> {
  const filled = (shape: number[], phase: number) =>
    tf.tensor(
      Array.from({ length: shape.reduce((p, d) => p * d, 1) }, (_, i) => Math.sin(0.37 * i + phase)),
      shape,
    );
  const [value, dA, dB] = tf.tidy(() => {
    const a = filled(aShape, 0.1);
    const b = filled(bShape, 1.3);
    const weights = (shape: number[]) => filled(shape, 2.9);
    const out = matmul(a, b, tA, tB);
    const upstream = weights(out.shape);
    const grads = tf.grads((x: tf.Tensor, y: tf.Tensor) => matmul(x, y, tA, tB).mul(upstream).sum())([a, b]);
    return [out, ...grads];
  }) as [tf.Tensor, tf.Tensor, tf.Tensor];
  const outcome = {
    value: (await value.data()) as Float32Array,
    dA: (await dA.data()) as Float32Array,
    dB: (await dB.data()) as Float32Array,
  };
  tf.dispose([value, dA, dB]);
  return outcome;
}

const maxDifference = (x: Float32Array, y: Float32Array) =>
  x.length === y.length
    ? Math.max(...Array.from(x, (v, i) => Math.abs(v - (y[i] ?? Number.NaN))))
    : Number.POSITIVE_INFINITY;

describe('matmul with transpose flags on webgpu', () => {
  const m = 40;
  const k = 30;
  const n = 50;
  for (const batch of [[], [3]]) {
    for (const [tA, tB] of [
      [false, false],
      [false, true],
      [true, false],
      [true, true],
    ] as const) {
      it(`equals the cpu backend's explicit transposes (batch [${batch}], transposeA ${tA}, transposeB ${tB})`, async () => {
        const aShape = [...batch, ...(tA ? [k, m] : [m, k])];
        const bShape = [...batch, ...(tB ? [n, k] : [k, n])];
        const before = tf.memory().numTensors;
        const gpu = await productAndGradients(aShape, bShape, tA, tB);
        expect(tf.memory().numTensors).toBe(before);
        await tf.setBackend('cpu');
        const cpu = await productAndGradients(aShape, bShape, tA, tB);
        await tf.setBackend('webgpu');
        expect(maxDifference(gpu.value, cpu.value)).toBeLessThan(1e-4);
        expect(maxDifference(gpu.dA, cpu.dA)).toBeLessThan(1e-4);
        expect(maxDifference(gpu.dB, cpu.dB)).toBeLessThan(1e-4);
      });
    }
  }
});
