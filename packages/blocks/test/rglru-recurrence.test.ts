import { SeededRandom, selectBackend } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { rgLru } from '../src/rglru.js';
import { linearRecurrence, type RecurrenceImplementation } from '../src/scan/linear-recurrence.js';

const IMPLEMENTATIONS: RecurrenceImplementation[] = ['fused', 'ops'];

/**
 * h_t = a_t h_{t−1} + b_t written plainly in float64, with its gradients for the loss Σ h ⊙ w:
 * g_t = w_t + a_{t+1} g_{t+1}, ∂/∂b_t = g_t, ∂/∂a_t = g_t h_{t−1}. Arrays are flat [B, L, F].
 */
type Shape = [batch: number, length: number, features: number];

function sequentialReference(a: Float32Array, b: Float32Array, w: Float32Array, [batch, length, features]: Shape) {
  const h = new Float64Array(a.length);
  const gradA = new Float64Array(a.length);
  const gradB = new Float64Array(a.length);
  const at = (bi: number, t: number, f: number) => (bi * length + t) * features + f;
  for (let bi = 0; bi < batch; bi++) {
    for (let f = 0; f < features; f++) {
      for (let t = 0; t < length; t++) {
        const previous = t > 0 ? (h[at(bi, t - 1, f)] as number) : 0;
        h[at(bi, t, f)] = (a[at(bi, t, f)] as number) * previous + (b[at(bi, t, f)] as number);
      }
      let future = 0;
      for (let t = length - 1; t >= 0; t--) {
        const g = (w[at(bi, t, f)] as number) + future;
        gradB[at(bi, t, f)] = g;
        gradA[at(bi, t, f)] = t > 0 ? g * (h[at(bi, t - 1, f)] as number) : 0;
        future = g * (a[at(bi, t, f)] as number);
      }
    }
  }
  return { h, gradA, gradB };
}

function draw(shape: number[], sample: (rng: SeededRandom) => number, seed: number): Float32Array {
  const rng = new SeededRandom(seed, 'griffin-recurrence-test');
  return Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, () => sample(rng));
}

/** Largest |x − y| relative to max(1, max |y|). */
function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs((actual[i] as number) - (expected[i] as number)));
    scale = Math.max(scale, Math.abs(expected[i] as number));
  }
  return diff / scale;
}

function runWithGradients(
  a: Float32Array,
  b: Float32Array,
  w: Float32Array,
  shape: Shape,
  impl: RecurrenceImplementation,
) {
  return tf.tidy(() => {
    const decay = tf.tensor3d(a, shape);
    const input = tf.tensor3d(b, shape);
    const weights = tf.tensor3d(w, shape);
    const h = linearRecurrence(decay, input, impl);
    const [gradA, gradB] = tf.grads((x: tf.Tensor, y: tf.Tensor) =>
      linearRecurrence(x as tf.Tensor3D, y as tf.Tensor3D, impl)
        .mul(weights)
        .sum(),
    )([decay, input]);
    return {
      h: h.dataSync() as Float32Array,
      gradA: (gradA as tf.Tensor).dataSync() as Float32Array,
      gradB: (gradB as tf.Tensor).dataSync() as Float32Array,
    };
  });
}

function expectMatchesReference(
  a: Float32Array,
  b: Float32Array,
  shape: Shape,
  tolerance: { value: number; gradient: number },
) {
  const w = draw(shape, (rng) => rng.normal(), 3);
  const reference = sequentialReference(a, b, w, shape);
  for (const impl of IMPLEMENTATIONS) {
    const before = tf.memory().numTensors;
    const result = runWithGradients(a, b, w, shape, impl);
    expect(tf.memory().numTensors, `${impl} leaks`).toBe(before);
    for (const key of ['h', 'gradA', 'gradB'] as const) {
      expect(result[key].every(Number.isFinite), `${impl} ${key} finite`).toBe(true);
      const bound = key === 'h' ? tolerance.value : tolerance.gradient;
      expect(relativeError(result[key], reference[key]), `${impl} ${key}`).toBeLessThan(bound);
    }
  }
}

describe.each(['wasm', 'cpu'] as const)(
  'linear recurrence on %s: fused kernel = tf-op parallel scan = sequential reference',
  (backend) => {
    beforeAll(async () => {
      await selectBackend(backend);
    });

    it('matches in value and in both gradients on a random sequence', () => {
      const shape: Shape = [2, 37, 5];
      const a = draw(shape, (rng) => rng.uniform(0, 1), 1);
      const b = draw(shape, (rng) => rng.normal(), 2);
      expectMatchesReference(a, b, shape, { value: 1e-5, gradient: 1e-5 });
    });

    it('stays accurate over L = 4096 with decays close to 1 (long memory)', () => {
      const shape: Shape = [1, 4096, 3];
      const a = draw(shape, (rng) => 1 - 10 ** rng.uniform(-4, -1), 4);
      const b = draw(shape, (rng) => rng.normal(), 5);
      // The gradient sums up to ~1/(1 − a) ≈ 10⁴ terms: float32 rounding of the
      // Hillis–Steele products grows with that sum, so allow 1e-4 relative.
      expectMatchesReference(a, b, shape, { value: 1e-4, gradient: 1e-4 });
    });

    it('handles extreme decays (exactly 0 and 1) and large inputs', () => {
      const shape: Shape = [2, 64, 4];
      const a = draw(shape, (rng) => [0, 1, 1 - 1e-7, rng.uniform(0, 1)][rng.int(4)] as number, 6);
      const b = draw(shape, (rng) => rng.normal() * 1e3, 7);
      expectMatchesReference(a, b, shape, { value: 1e-5, gradient: 1e-5 });
    });
  },
);

describe('RG-LRU: fused and tf-op recurrences agree, gradients finite at extreme gates', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  /** RG-LRU outputs and the gradients of Σ h ⊙ w w.r.t. x, both gates and a_param. */
  function rgLruGradients(scale: number, aParamValues: number[], impl: RecurrenceImplementation) {
    return tf.tidy(() => {
      const shape: Shape = [2, 33, aParamValues.length];
      const tensor = (seed: number, s: number) =>
        tf.tensor3d(
          draw(shape, (rng) => rng.normal() * s, seed),
          shape,
        );
      const [x, aGate, inputGate, aParam] = [
        tensor(11, 1),
        tensor(12, scale),
        tensor(13, scale),
        tf.tensor1d(aParamValues),
      ];
      const weights = tensor(14, 1);
      const run = (...args: tf.Tensor[]) => {
        const [xs, aGates, inputGates, aParams] = args as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.Tensor1D];
        return rgLru({ x: xs, aGate: aGates, inputGate: inputGates, aParam: aParams, c: 8 }, impl);
      };
      const grads = tf.grads((...args: tf.Tensor[]) =>
        run(...args)
          .mul(weights)
          .sum(),
      )([x, aGate, inputGate, aParam]);
      return [run(x, aGate, inputGate, aParam), ...grads].map((t) => t.dataSync() as Float32Array);
    });
  }

  it.each([
    ['moderate gates', 1, [-6, -4.3, -9, 0, 2]],
    ['saturated gates (±1e4) and extreme a_param', 1e4, [-80, -20, 0, 20, 80]],
  ])('%s', (_label, scale, aParamValues) => {
    const fused = rgLruGradients(scale as number, aParamValues as number[], 'fused');
    const ops = rgLruGradients(scale as number, aParamValues as number[], 'ops');
    fused.forEach((values, index) => {
      expect(values.every(Number.isFinite), `output ${index} finite`).toBe(true);
      expect(relativeError(values, ops[index] as Float32Array), `output ${index}`).toBeLessThan(1e-4);
    });
  });
});
