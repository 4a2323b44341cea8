import { selectBackend } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { type ScanImplementation, selectiveScan } from '../src/scan/selective-scan.js';

/** The recurrence of SPEC §2.1 written as plainly as possible, in float64, for reference. */
function sequentialReference(x: number[][][], dt: number[][][], a: number[][], b: number[][][], c: number[][][]) {
  return x.map((sequence, bi) => {
    const h = a.map((row) => row.map(() => 0));
    return sequence.map((xt, t) =>
      xt.map((xd, d) => {
        let y = 0;
        for (let n = 0; n < (a[0] as number[]).length; n++) {
          const delta = dt[bi]![t]![d]!;
          h[d]![n] = Math.exp(delta * a[d]![n]!) * h[d]![n]! + delta * xd * b[bi]![t]![n]!;
          y += h[d]![n]! * c[bi]![t]![n]!;
        }
        return y;
      }),
    );
  });
}

function randomInputs(batch: number, length: number, dInner: number, dState: number, dtScale = 1) {
  return tf.tidy(() => ({
    x: tf.randomNormal([batch, length, dInner], 0, 1, 'float32', 1) as tf.Tensor3D,
    dt: tf.softplus(tf.randomNormal([batch, length, dInner], 0, 1, 'float32', 2)).mul(dtScale) as tf.Tensor3D,
    a: tf.exp(tf.randomNormal([dInner, dState], 0, 1, 'float32', 3)).neg() as tf.Tensor2D,
    b: tf.randomNormal([batch, length, dState], 0, 1, 'float32', 4) as tf.Tensor3D,
    c: tf.randomNormal([batch, length, dState], 0, 1, 'float32', 5) as tf.Tensor3D,
  }));
}

describe('selective scan: fused = tf-op parallel scan = sequential reference', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('agrees with the sequential reference in value', () => {
    const inputs = randomInputs(2, 19, 3, 4);
    const reference = sequentialReference(
      inputs.x.arraySync(),
      inputs.dt.arraySync(),
      inputs.a.arraySync(),
      inputs.b.arraySync(),
      inputs.c.arraySync(),
    );
    for (const implementation of ['fused', 'ops'] as ScanImplementation[]) {
      const y = selectiveScan(inputs, implementation);
      const diff = tf.tidy(() => tf.sub(y, tf.tensor3d(reference)).abs().max().dataSync()[0] as number);
      expect(diff, implementation).toBeLessThan(1e-4);
      y.dispose();
    }
    tf.dispose(inputs);
  });

  it.each([
    ['moderate dt', 1],
    ['extreme dt', 200],
  ])('has the same gradients in both implementations (%s)', (_label, dtScale) => {
    const inputs = randomInputs(2, 33, 5, 4, dtScale);
    const weights = tf.randomNormal([2, 33, 5], 0, 1, 'float32', 9);
    const gradients = (implementation: ScanImplementation) =>
      tf.grads((x, dt, a, b, c) =>
        selectiveScan({ x, dt, a, b, c } as Parameters<typeof selectiveScan>[0], implementation)
          .mul(weights)
          .sum(),
      )([inputs.x, inputs.dt, inputs.a, inputs.b, inputs.c]);
    const fused = gradients('fused');
    const ops = gradients('ops');
    fused.forEach((gradient, index) => {
      const other = ops[index] as tf.Tensor;
      const [diff, scale, finite] = tf.tidy(() => [
        gradient.sub(other).abs().max().dataSync()[0] as number,
        other.abs().max().dataSync()[0] as number,
        gradient.isFinite().all().dataSync()[0] as number,
      ]);
      expect(finite).toBe(1);
      expect(diff / Math.max(scale, 1)).toBeLessThan(1e-4);
    });
    tf.dispose([...fused, ...ops, weights, inputs]);
  });
});
