import { selectBackend } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type ScanImplementation, selectiveScan } from '../src/scan/selective-scan.js';
import {
  draw,
  type FlatInputs,
  INPUT_NAMES,
  type InputName,
  randomInputs,
  relativeError,
  type Shape,
  sequentialReference,
} from './support/selective-scan-reference.js';

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

const savedSimd = process.env.INTERLEAVE_SCAN_SIMD;
function restoreSimdSetting() {
  if (savedSimd === undefined) delete process.env.INTERLEAVE_SCAN_SIMD;
  else process.env.INTERLEAVE_SCAN_SIMD = savedSimd;
}

// The fused kernel has two host implementations: the WebAssembly SIMD one (float32, the default
// where d_state is a multiple of 4) and the JavaScript one (float64 state, worker threads).
describe.each([
  ['wasm', 'on'],
  ['wasm', 'off'],
  ['cpu', 'on'],
  ['cpu', 'off'],
] as const)(
  'selective scan on %s (INTERLEAVE_SCAN_SIMD=%s): fused kernel = tf-op scan = sequential reference',
  (backend, simd) => {
    beforeAll(async () => {
      await selectBackend(backend);
    });
    beforeEach(() => {
      process.env.INTERLEAVE_SCAN_SIMD = simd;
    });
    afterEach(restoreSimdSetting);

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

describe('selective scan kernel split over worker threads (the JavaScript kernel)', () => {
  const saved = process.env.INTERLEAVE_KERNEL_THREADS;
  beforeEach(() => {
    process.env.INTERLEAVE_SCAN_SIMD = 'off';
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.INTERLEAVE_KERNEL_THREADS;
    else process.env.INTERLEAVE_KERNEL_THREADS = saved;
    restoreSimdSetting();
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
