import { SeededRandom, selectBackend } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ScanImplementation, selectiveScan } from '../src/scan/selective-scan.js';

interface Shape {
  batch: number;
  length: number;
  dInner: number;
  dState: number;
}
interface FlatInputs {
  x: Float32Array;
  dt: Float32Array;
  a: Float32Array;
  b: Float32Array;
  c: Float32Array;
}
type InputName = keyof FlatInputs;
const INPUT_NAMES: InputName[] = ['x', 'dt', 'a', 'b', 'c'];

/**
 * The recurrence of docs/design.md#mamba, written as plainly as possible in float64, one channel at a time, with
 * the gradients of the loss Σ y ⊙ w by reverse accumulation:
 *   gh_t = w_t C_t + exp(Δ_{t+1} A) gh_{t+1}.
 */
function sequentialReference(inputs: FlatInputs, w: Float32Array, shape: Shape) {
  const { batch, length, dInner, dState } = shape;
  const { x, dt, a, b, c } = inputs;
  const y = new Float64Array(x.length);
  const grads = Object.fromEntries(INPUT_NAMES.map((name) => [name, new Float64Array(inputs[name].length)])) as Record<
    InputName,
    Float64Array
  >;
  const seq = (bi: number, t: number, d: number) => (bi * length + t) * dInner + d;
  const bc = (bi: number, t: number, n: number) => (bi * length + t) * dState + n;
  for (let bi = 0; bi < batch; bi++) {
    for (let d = 0; d < dInner; d++) {
      for (let n = 0; n < dState; n++) {
        const A = a[d * dState + n] as number;
        const h: number[] = [];
        for (let t = 0; t < length; t++) {
          const delta = dt[seq(bi, t, d)] as number;
          const previous = t > 0 ? (h[t - 1] as number) : 0;
          h[t] = Math.exp(delta * A) * previous + delta * (x[seq(bi, t, d)] as number) * (b[bc(bi, t, n)] as number);
          y[seq(bi, t, d)] = (y[seq(bi, t, d)] as number) + (h[t] as number) * (c[bc(bi, t, n)] as number);
        }
        let gh = 0;
        for (let t = length - 1; t >= 0; t--) {
          const i = seq(bi, t, d);
          const j = bc(bi, t, n);
          const delta = dt[i] as number;
          const previous = t > 0 ? (h[t - 1] as number) : 0;
          const decay = Math.exp(delta * A);
          const g = gh + (w[i] as number) * (c[j] as number);
          grads.c[j] = (grads.c[j] as number) + (w[i] as number) * (h[t] as number);
          grads.b[j] = (grads.b[j] as number) + g * delta * (x[i] as number);
          grads.x[i] = (grads.x[i] as number) + g * delta * (b[j] as number);
          grads.dt[i] = (grads.dt[i] as number) + g * (A * decay * previous + (x[i] as number) * (b[j] as number));
          grads.a[d * dState + n] = (grads.a[d * dState + n] as number) + g * delta * decay * previous;
          gh = g * decay;
        }
      }
    }
  }
  return { y, grads };
}

function draw(length: number, sample: (rng: SeededRandom) => number, seed: number): Float32Array {
  const rng = new SeededRandom(seed, 'selective-scan-test');
  return Float32Array.from({ length }, () => sample(rng));
}

/** Random inputs as Mamba produces them: Δ = softplus(·)·scale, A = −exp(·). */
function randomInputs(shape: Shape, dtScale: number): FlatInputs {
  const { batch, length, dInner, dState } = shape;
  const softplus = (v: number) => Math.log1p(Math.exp(v));
  return {
    x: draw(batch * length * dInner, (rng) => rng.normal(), 1),
    dt: draw(batch * length * dInner, (rng) => softplus(rng.normal()) * dtScale, 2),
    a: draw(dInner * dState, (rng) => -Math.exp(rng.normal()), 3),
    b: draw(batch * length * dState, (rng) => rng.normal(), 4),
    c: draw(batch * length * dState, (rng) => rng.normal(), 5),
  };
}

/** Largest |actual − expected| relative to max(1, max |expected|). */
function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs((actual[i] as number) - (expected[i] as number)));
    scale = Math.max(scale, Math.abs(expected[i] as number));
  }
  return diff / scale;
}

function runWithGradients(inputs: FlatInputs, w: Float32Array, shape: Shape, implementation: ScanImplementation) {
  const { batch, length, dInner, dState } = shape;
  return tf.tidy(() => {
    const tensors = [
      tf.tensor3d(inputs.x, [batch, length, dInner]),
      tf.tensor3d(inputs.dt, [batch, length, dInner]),
      tf.tensor2d(inputs.a, [dInner, dState]),
      tf.tensor3d(inputs.b, [batch, length, dState]),
      tf.tensor3d(inputs.c, [batch, length, dState]),
    ];
    const weights = tf.tensor3d(w, [batch, length, dInner]);
    const scan = (x: tf.Tensor, dt: tf.Tensor, a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
      selectiveScan({ x, dt, a, b, c } as Parameters<typeof selectiveScan>[0], implementation);
    const y = scan(...(tensors as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]));
    const grads = tf.grads((x, dt, a, b, c) => scan(x, dt, a, b, c).mul(weights).sum())(tensors);
    return {
      y: y.dataSync() as Float32Array,
      grads: Object.fromEntries(
        INPUT_NAMES.map((name, index) => [name, (grads[index] as tf.Tensor).dataSync() as Float32Array]),
      ) as Record<InputName, Float32Array>,
    };
  });
}

function expectAllAgree(shape: Shape, dtScale: number, implementations: ScanImplementation[] = ['fused', 'ops']) {
  const inputs = randomInputs(shape, dtScale);
  const w = draw(shape.batch * shape.length * shape.dInner, (rng) => rng.normal(), 9);
  const reference = sequentialReference(inputs, w, shape);
  for (const implementation of implementations) {
    const before = tf.memory().numTensors;
    const result = runWithGradients(inputs, w, shape, implementation);
    expect(tf.memory().numTensors, `${implementation} leaks`).toBe(before);
    expect(result.y.every(Number.isFinite), `${implementation} y finite`).toBe(true);
    expect(relativeError(result.y, reference.y), `${implementation} y`).toBeLessThan(1e-4);
    for (const name of INPUT_NAMES) {
      expect(result.grads[name].every(Number.isFinite), `${implementation} d${name} finite`).toBe(true);
      expect(relativeError(result.grads[name], reference.grads[name]), `${implementation} d${name}`).toBeLessThan(1e-4);
    }
  }
}

describe.each(['wasm', 'cpu'] as const)(
  'selective scan on %s: fused kernel = tf-op scan = sequential reference',
  (backend) => {
    beforeAll(async () => {
      await selectBackend(backend);
    });

    it.each([
      ['moderate Δ', 1],
      ['large Δ (decays underflow to 0)', 200],
      ['tiny Δ (decays round to 1)', 1e-5],
    ])('agrees in value and all five gradients (%s)', (_label, dtScale) => {
      expectAllAgree({ batch: 2, length: 33, dInner: 5, dState: 4 }, dtScale);
    });

    it('stays accurate over L = 4096', () => {
      expectAllAgree({ batch: 1, length: 4096, dInner: 3, dState: 4 }, 0.05);
    });
  },
);

describe('selective scan kernel split over worker threads', () => {
  const saved = process.env.INTERLEAVE_KERNEL_THREADS;
  afterEach(() => {
    if (saved === undefined) delete process.env.INTERLEAVE_KERNEL_THREADS;
    else process.env.INTERLEAVE_KERNEL_THREADS = saved;
  });
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('gives the same values and gradients on 1 and 3 threads, and matches the reference', () => {
    // Large enough (B·L·d_inner·d_state ≥ 2^17) for the kernel to use its workers.
    const shape = { batch: 2, length: 512, dInner: 12, dState: 16 };
    const inputs = randomInputs(shape, 1);
    const w = draw(shape.batch * shape.length * shape.dInner, (rng) => rng.normal(), 9);
    process.env.INTERLEAVE_KERNEL_THREADS = '1';
    const single = runWithGradients(inputs, w, shape, 'fused');
    process.env.INTERLEAVE_KERNEL_THREADS = '3';
    const threaded = runWithGradients(inputs, w, shape, 'fused');
    expect(Array.from(threaded.y)).toEqual(Array.from(single.y));
    for (const name of INPUT_NAMES) {
      expect(relativeError(threaded.grads[name], single.grads[name]), `d${name}`).toBeLessThan(1e-6);
    }
    const reference = sequentialReference(inputs, w, shape);
    expect(relativeError(threaded.y, reference.y)).toBeLessThan(1e-4);
    for (const name of INPUT_NAMES) {
      expect(relativeError(threaded.grads[name], reference.grads[name]), `d${name}`).toBeLessThan(1e-4);
    }
  });

  it('rejects a malformed INTERLEAVE_KERNEL_THREADS', () => {
    process.env.INTERLEAVE_KERNEL_THREADS = 'many';
    const shape = { batch: 2, length: 512, dInner: 12, dState: 16 };
    const inputs = randomInputs(shape, 1);
    const w = draw(shape.batch * shape.length * shape.dInner, (rng) => rng.normal(), 9);
    expect(() => runWithGradients(inputs, w, shape, 'fused')).toThrow(
      /INTERLEAVE_KERNEL_THREADS must be a positive integer/,
    );
  });
});
