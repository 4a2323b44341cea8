import { SeededRandom } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { startWebgpuBackend } from '../../blocks/test/support/webgpu-device.js';
import { fusedCrossEntropyAvailable } from '../src/trainer/cross-entropy-wgsl.js';
import { maskedCrossEntropy, maskedCrossEntropyWithOps } from '../src/trainer/objective.js';

/** Mean over masked rows of log Σ exp(logits) − logit[target], and its gradient, in float64. */
function reference(logits: Float32Array, targets: Int32Array, mask: Float32Array, vocab: number) {
  const rows = targets.length;
  const count = Math.max(
    mask.reduce((a, b) => a + b, 0),
    1,
  );
  let loss = 0;
  const gradient = new Float64Array(logits.length);
  for (let row = 0; row < rows; row++) {
    const at = (j: number) => logits[row * vocab + j] as number;
    let largest = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < vocab; j++) largest = Math.max(largest, at(j));
    let sum = 0;
    for (let j = 0; j < vocab; j++) sum += Math.exp(at(j) - largest);
    const normaliser = largest + Math.log(sum);
    const weight = (mask[row] as number) / count;
    loss += (normaliser - at(targets[row] as number)) * weight;
    for (let j = 0; j < vocab; j++) {
      gradient[row * vocab + j] = (Math.exp(at(j) - normaliser) - (j === targets[row] ? 1 : 0)) * weight;
    }
  }
  return { loss, gradient };
}

function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let diff = 0;
  let scale = 1e-3;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs((actual[i] as number) - (expected[i] as number)));
    scale = Math.max(scale, Math.abs(expected[i] as number));
  }
  return diff / scale;
}

beforeAll(async () => {
  await startWebgpuBackend();
});

describe('masked cross-entropy WGSL kernels on webgpu = tf-op form = float64 reference', () => {
  it('is the default on webgpu', () => {
    expect(fusedCrossEntropyAvailable()).toBe(true);
  });

  it.each([
    ['a vocabulary below one workgroup', 2, 7, 100],
    ['a vocabulary over several passes, not a multiple of 256', 3, 5, 1000],
  ])('agrees in loss and gradient (%s)', async (_label, batch, length, vocab) => {
    const rng = new SeededRandom(11, 'webgpu-cross-entropy');
    const rows = batch * length;
    const logits = Float32Array.from({ length: rows * vocab }, () => rng.normal(0, 3));
    const targets = Int32Array.from({ length: rows }, () => rng.int(vocab));
    // Some rows unsupervised, as MQAR's key-value positions are.
    const mask = Float32Array.from({ length: rows }, (_, row) => (row % 3 === 1 ? 0 : 1));
    const expected = reference(logits, targets, mask, vocab);
    for (const [label, loss] of [
      ['fused', maskedCrossEntropy],
      ['ops', maskedCrossEntropyWithOps],
    ] as const) {
      const before = tf.memory().numTensors;
      const outputs = tf.tidy(() => {
        const supervision = {
          targets: tf.tensor2d(targets, [batch, length], 'int32'),
          mask: tf.tensor2d(mask, [batch, length]),
        };
        const { value, grads } = tf.valueAndGrads((x: tf.Tensor) => loss(x as tf.Tensor3D, supervision))([
          tf.tensor3d(logits, [batch, length, vocab]),
        ]);
        return [value, grads[0] as tf.Tensor];
      });
      const [value, gradient] = (await Promise.all(outputs.map((t) => t.data()))) as Float32Array[];
      tf.dispose(outputs);
      expect(tf.memory().numTensors, `${label} leaks`).toBe(before);
      expect(Math.abs((value?.[0] as number) - expected.loss) / expected.loss, `${label} loss`).toBeLessThan(1e-5);
      expect(relativeError(gradient as Float32Array, expected.gradient), `${label} gradient`).toBeLessThan(1e-5);
    }
  });
});
