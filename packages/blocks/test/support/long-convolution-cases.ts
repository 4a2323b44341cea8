import { type BackendRequest, SeededRandom, selectBackend } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { causalLongConvolution, type LongConvolutionMethod } from '../../src/hyena/long-convolution.js';

/**
 * Hyena's long convolution against an O(L²) float64 loop, values and gradients, for every method
 * a backend may take (hyena/long-convolution.ts).
 */

type Array3 = number[][][];
type Array2 = number[][];

/** y[b, t, c] = Σ_{s ≤ t} h[t − s, c] x[b, s, c], in float64. */
function referenceConvolution(x: Array3, h: Array2): Array3 {
  return x.map((sequence) =>
    sequence.map((_, t) =>
      (sequence[0] as number[]).map((_, c) => {
        let sum = 0;
        for (let s = 0; s <= t; s++) sum += (h[t - s] as number[])[c]! * (sequence[s] as number[])[c]!;
        return sum;
      }),
    ),
  );
}

/** Gradients of Σ y ⊙ w: dx[b, s, c] = Σ_{t ≥ s} w[b, t, c] h[t − s, c], dh[k, c] = Σ_b Σ_t w[b, t, c] x[b, t − k, c]. */
function referenceGradients(x: Array3, h: Array2, w: Array3): { dx: Array3; dh: Array2 } {
  const length = h.length;
  const dx = x.map((sequence, b) =>
    sequence.map((_, s) =>
      (sequence[0] as number[]).map((_, c) => {
        let sum = 0;
        for (let t = s; t < length; t++) sum += w[b]![t]![c]! * h[t - s]![c]!;
        return sum;
      }),
    ),
  );
  const dh = h.map((row, k) =>
    row.map((_, c) => {
      let sum = 0;
      for (const [b, sequence] of x.entries())
        for (let t = k; t < length; t++) sum += w[b]![t]![c]! * sequence[t - k]![c]!;
      return sum;
    }),
  );
  return { dx, dh };
}

function normalArray(rng: SeededRandom, shape: number[]): number[] {
  return Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.normal());
}

/** max |a − b| / max(1, max |b|). */
async function relativeDiff(actual: tf.Tensor, expected: number[][] | number[][][]): Promise<number> {
  const a = (await actual.data()) as Float32Array;
  const e = (expected as unknown[]).flat(2) as number[];
  let diff = 0;
  let scale = 1;
  for (const [i, value] of e.entries()) {
    diff = Math.max(diff, Math.abs((a[i] as number) - value));
    scale = Math.max(scale, Math.abs(value));
  }
  return diff / scale;
}

const SHAPES: [batch: number, length: number, channels: number][] = [
  [2, 1, 3],
  [2, 7, 3],
  [3, 16, 2],
  [1, 33, 4],
];

/**
 * `start` selects the backend (default: `selectBackend(backend)`); `longTolerance` loosens the
 * L = 300 case's bound (1e-5 of the largest value) for a method whose kernels round more.
 */
export function convolutionCases(
  backend: BackendRequest,
  methods: LongConvolutionMethod[],
  start: () => Promise<unknown> = () => selectBackend(backend),
  longTolerance: Partial<Record<LongConvolutionMethod, number>> = {},
) {
  describe(`long convolution on ${backend}: ${methods.join(' = ')} = O(L²) reference`, () => {
    beforeAll(async () => {
      await start();
    });

    it.each(SHAPES)('values and gradients at B=%i, L=%i, C=%i', async (batch, length, channels) => {
      const rng = new SeededRandom(length, 'long-convolution');
      const xValues = normalArray(rng, [batch, length, channels]);
      const hValues = normalArray(rng, [length, channels]);
      const wValues = normalArray(rng, [batch, length, channels]);
      const x = tf.tensor3d(xValues, [batch, length, channels]);
      const h = tf.tensor2d(hValues, [length, channels]);
      const w = tf.tensor3d(wValues, [batch, length, channels]);
      const expected = referenceConvolution(x.arraySync(), h.arraySync());
      const gradients = referenceGradients(x.arraySync(), h.arraySync(), w.arraySync());
      for (const method of methods) {
        const before = tf.memory().numTensors;
        const y = causalLongConvolution(x, h, method);
        const [dx, dh] = tf.grads((a: tf.Tensor, b: tf.Tensor) =>
          causalLongConvolution(a as tf.Tensor3D, b as tf.Tensor2D, method)
            .mul(w)
            .sum(),
        )([x, h]) as [tf.Tensor, tf.Tensor];
        expect(y.shape, method).toEqual([batch, length, channels]);
        expect(await relativeDiff(y, expected), `${method} value`).toBeLessThan(1e-5);
        expect(await relativeDiff(dx, gradients.dx), `${method} ∂x`).toBeLessThan(1e-5);
        expect(await relativeDiff(dh, gradients.dh), `${method} ∂h`).toBeLessThan(1e-5);
        tf.dispose([y, dx, dh]);
        expect(tf.memory().numTensors - before, `${method} leaked tensors`).toBeLessThanOrEqual(0);
      }
      tf.dispose([x, h, w]);
    });

    it('stays exact for a long sequence (L = 300)', async () => {
      const rng = new SeededRandom(1, 'long-convolution');
      const [batch, length, channels] = [1, 300, 2];
      const x = tf.tensor3d(normalArray(rng, [batch, length, channels]), [batch, length, channels]);
      // A slowly decaying filter, as Hyena's are, so that far lags matter.
      const h = tf.tidy(() =>
        tf
          .tensor2d(normalArray(rng, [length, channels]), [length, channels])
          .mul(tf.linspace(1, 0.1, length).reshape([length, 1])),
      );
      const expected = referenceConvolution(await x.array(), (await h.array()) as Array2);
      for (const method of methods) {
        const y = causalLongConvolution(x, h as tf.Tensor2D, method);
        expect(await relativeDiff(y, expected), method).toBeLessThan(longTolerance[method] ?? 1e-5);
        y.dispose();
      }
      tf.dispose([x, h]);
    });
  });
}
