import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { clipByGlobalNorm } from '../src/optimizer/clip-gradients.js';

/** A gradient of `size` values in [−1, 1) from a fixed sequence, and its Σ g² in float64. */
function gradient(size: number, seed: number): { tensor: tf.Tensor; squares: number } {
  const values = new Float32Array(size);
  let state = seed;
  for (let i = 0; i < size; i++) {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    values[i] = state / 2 ** 30 - 1;
  }
  return { tensor: tf.tensor1d(values), squares: values.reduce((sum, value) => sum + value * value, 0) };
}

describe('clipByGlobalNorm', () => {
  it('takes the global norm over small gradients and large ones summed by rows (padded or not)', async () => {
    // 100 values (summed whole), 8,192 (rows of 1,024) and 5,000 (padded to 5,120 with zeros).
    const parts = [gradient(100, 1), gradient(8192, 2), gradient(5000, 3)];
    const expected = Math.sqrt(parts.reduce((sum, part) => sum + part.squares, 0));
    const byName = Object.fromEntries(parts.map((part, i) => [`g${i}`, part.tensor]));
    const tensors = tf.memory().numTensors;
    const { gradients, norm } = clipByGlobalNorm(byName, 1);
    expect(tf.memory().numTensors).toBe(tensors + parts.length + 1);
    expect(Math.abs(((await norm.data())[0] as number) - expected) / expected).toBeLessThan(1e-6);
    // Clipped to norm 1: every value scaled by 1 / (norm + 1e-6).
    const clipped = await (gradients.g1 as tf.Tensor).data();
    const original = await (parts[1] as { tensor: tf.Tensor }).tensor.data();
    expect((clipped[7] as number) / (original[7] as number)).toBeCloseTo(1 / expected, 6);
    tf.dispose([...Object.values(gradients), norm, ...parts.map((part) => part.tensor)]);
  });
});
