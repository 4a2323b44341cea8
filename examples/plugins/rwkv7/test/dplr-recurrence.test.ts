import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { chunkedDplr, type DplrInputs, dplrStep } from '../src/index.js';

/** Random RWKV-7-shaped inputs [B, H, L, ·]: a = −κ̂, b = κ̂ ⊙ α, λ ∈ [−e^{−1/2}, 0]. */
function randomInputs(seed: number, shape: [number, number, number, number]): DplrInputs<tf.Tensor4D> {
  const normal = (offset: number) => tf.randomNormal(shape, 0, 1, 'float32', seed + offset) as tf.Tensor4D;
  const removal = tf.tidy(() => {
    const raw = normal(3);
    return raw.div(raw.square().sum(-1, true).sqrt()) as tf.Tensor4D;
  });
  const rate = tf.randomUniform(shape, 0, 1, 'float32', seed + 4) as tf.Tensor4D;
  const inputs = {
    r: normal(0),
    k: normal(1),
    v: normal(2),
    logDecay: tf.randomUniform(shape, -Math.exp(-0.5), 0, 'float32', seed + 5) as tf.Tensor4D,
    a: removal.neg() as tf.Tensor4D,
    b: removal.mul(rate) as tf.Tensor4D,
  };
  tf.dispose([removal, rate]);
  return inputs;
}

/** The recurrence token by token: o [B, H, L, d_v]. */
function stepped(inputs: DplrInputs<tf.Tensor4D>): tf.Tensor4D {
  return tf.tidy(() => {
    const [batch, heads, length, keyDim] = inputs.r.shape;
    let state = tf.zeros([batch, heads, keyDim, inputs.v.shape[3]]) as tf.Tensor4D;
    const outputs: tf.Tensor3D[] = [];
    const at = (x: tf.Tensor4D, t: number) =>
      x.slice([0, 0, t, 0], [batch, heads, 1, x.shape[3]]).squeeze([2]) as tf.Tensor3D;
    for (let t = 0; t < length; t++) {
      const result = dplrStep(state, {
        r: at(inputs.r, t),
        k: at(inputs.k, t),
        v: at(inputs.v, t),
        logDecay: at(inputs.logDecay, t),
        a: at(inputs.a, t),
        b: at(inputs.b, t),
      });
      outputs.push(result.output);
      state = result.state;
    }
    return tf.stack(outputs, 2) as tf.Tensor4D;
  });
}

describe('chunkedDplr', () => {
  // Chunks of 1 (pure recurrence), ones that split the sequence unevenly, one longer than it.
  for (const chunk of [1, 4, 8, 32]) {
    it(`matches the token-by-token recurrence with chunks of ${chunk} (L = 19, padded)`, async () => {
      await tf.setBackend('cpu');
      const inputs = randomInputs(11, [2, 2, 19, 4]);
      const chunked = chunkedDplr(inputs, chunk);
      const reference = stepped(inputs);
      const error = (await tf.max(tf.abs(chunked.sub(reference))).data())[0] as number;
      const scale = (await tf.max(tf.abs(reference)).data())[0] as number;
      expect(scale).toBeGreaterThan(0.5);
      expect(error / scale).toBeLessThan(2e-5);
      tf.dispose([chunked, reference, ...Object.values(inputs)]);
    });
  }

  it('refuses a chunk size that is not a power of two ≤ 64', () => {
    const inputs = randomInputs(1, [1, 1, 4, 2]);
    expect(() => chunkedDplr(inputs, 12)).toThrow('rwkv7: chunk_size must be a power of two ≤ 64, got 12');
    expect(() => chunkedDplr(inputs, 128)).toThrow('got 128');
    tf.dispose(Object.values(inputs));
  });
});
