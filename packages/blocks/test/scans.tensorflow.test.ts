import { SeededRandom, selectBackend } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { LINEAR_RECURRENCE_KERNEL } from '../src/scan/kernels/linear-recurrence-kernel.js';
import { SELECTIVE_SCAN_KERNEL } from '../src/scan/kernels/selective-scan-kernel.js';
import { linearRecurrence } from '../src/scan/linear-recurrence.js';
import { defaultScanImplementation, type ScanImplementation } from '../src/scan/scan-implementation.js';
import { selectiveScan } from '../src/scan/selective-scan.js';

// The fused scan kernels on the native backend, against the same computation on the cpu backend
// (whose kernels selective-scan.test.ts and griffin-recurrence.test.ts check against float64
// references) and against TensorFlow running the tf-op scans itself.

type Shapes = Record<string, number[]>;
type Values = Record<string, Float32Array>;

function draw(shapes: Shapes, sample: Record<string, (rng: SeededRandom) => number>): Values {
  const rng = new SeededRandom(7, 'scans-tensorflow-test');
  return Object.fromEntries(
    Object.entries(shapes).map(([name, shape]) => {
      const size = shape.reduce((a, b) => a * b, 1);
      const draw = sample[name] ?? ((r: SeededRandom) => r.normal());
      return [name, Float32Array.from({ length: size }, () => draw(rng))];
    }),
  );
}

/** Output and the gradients of Σ output ⊙ w with respect to every input, as plain arrays. */
function valueAndGradients(
  shapes: Shapes,
  values: Values,
  weights: Float32Array,
  run: (...inputs: tf.Tensor[]) => tf.Tensor,
): Float32Array[] {
  return tf.tidy(() => {
    const names = Object.keys(shapes);
    const inputs = names.map((name) => tf.tensor(values[name] as Float32Array, shapes[name]));
    const y = run(...inputs);
    const w = tf.tensor(weights, y.shape);
    const grads = tf.grads((...xs: tf.Tensor[]) =>
      run(...xs)
        .mul(w)
        .sum(),
    )(inputs);
    return [y, ...grads].map((t) => t.dataSync() as Float32Array);
  });
}

function maxRelativeError(actual: Float32Array, expected: Float32Array): number {
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs((actual[i] as number) - (expected[i] as number)));
    scale = Math.max(scale, Math.abs(expected[i] as number));
  }
  return diff / scale;
}

async function compareAcrossBackends(
  shapes: Shapes,
  values: Values,
  weights: Float32Array,
  run: (implementation: ScanImplementation) => (...inputs: tf.Tensor[]) => tf.Tensor,
) {
  await selectBackend('cpu');
  const onCpu = valueAndGradients(shapes, values, weights, run('fused'));
  await selectBackend('tensorflow');
  for (const implementation of ['fused', 'ops'] as const) {
    const before = tf.memory().numTensors;
    const onTensorflow = valueAndGradients(shapes, values, weights, run(implementation));
    expect(tf.memory().numTensors, `${implementation} leaks`).toBe(before);
    for (const [index, expected] of onCpu.entries()) {
      const actual = onTensorflow[index] as Float32Array;
      expect(actual.every(Number.isFinite), `${implementation} output ${index} finite`).toBe(true);
      expect(maxRelativeError(actual, expected), `${implementation} output ${index}`).toBeLessThan(1e-4);
    }
  }
}

describe('fused scan kernels on tensorflow', () => {
  it('are registered there, so the scans take them by default', async () => {
    await selectBackend('tensorflow');
    expect(defaultScanImplementation(SELECTIVE_SCAN_KERNEL)).toBe('fused');
    expect(defaultScanImplementation(LINEAR_RECURRENCE_KERNEL)).toBe('fused');
  });

  it('selective scan: fused and tf-op scans on tensorflow match cpu in value and all five gradients', async () => {
    const [batch, length, dInner, dState] = [2, 40, 6, 4];
    const shapes = {
      x: [batch, length, dInner],
      dt: [batch, length, dInner],
      a: [dInner, dState],
      b: [batch, length, dState],
      c: [batch, length, dState],
    };
    const values = draw(shapes, {
      dt: (rng) => Math.log1p(Math.exp(rng.normal())) * 0.5,
      a: (rng) => -Math.exp(rng.normal()),
    });
    const weights = draw({ w: [batch, length, dInner] }, {}).w as Float32Array;
    await compareAcrossBackends(
      shapes,
      values,
      weights,
      (implementation) => (x, dt, a, b, c) =>
        selectiveScan({ x, dt, a, b, c } as Parameters<typeof selectiveScan>[0], implementation),
    );
  });

  it('linear recurrence: fused and tf-op scans on tensorflow match cpu in value and both gradients', async () => {
    const shapes = { a: [2, 64, 5], b: [2, 64, 5] };
    const values = draw(shapes, { a: (rng) => 1 / (1 + Math.exp(-rng.normal() - 2)) });
    const weights = draw({ w: [2, 64, 5] }, {}).w as Float32Array;
    await compareAcrossBackends(
      shapes,
      values,
      weights,
      (implementation) => (a, b) => linearRecurrence(a as tf.Tensor3D, b as tf.Tensor3D, implementation),
    );
  });
});
