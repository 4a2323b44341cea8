import { type BackendRequest, capabilitiesOf, SeededRandom, selectBackend } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  causalLongConvolution,
  type LongConvolutionMethod,
  longConvolutionMethodFor,
} from '../src/hyena/long-convolution.js';

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

function convolutionCases(backend: BackendRequest, methods: LongConvolutionMethod[]) {
  describe(`long convolution on ${backend}: ${methods.join(' = ')} = O(L²) reference`, () => {
    beforeAll(async () => {
      await selectBackend(backend);
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
      const expected = referenceConvolution(x.arraySync(), h.arraySync() as Array2);
      for (const method of methods) {
        const y = causalLongConvolution(x, h as tf.Tensor2D, method);
        expect(await relativeDiff(y, expected), method).toBeLessThan(1e-5);
        y.dispose();
      }
      tf.dispose([x, h]);
    });
  });
}

convolutionCases('cpu', ['fft', 'dft']);
convolutionCases('wasm', ['dft']);

describe('longConvolutionMethodFor', () => {
  const fakeBackend = (name: string, kernels: string[]) => ({ name, hasKernel: (k: string) => kernels.includes(k) });
  const fftKernels = ['FFT', 'IFFT', 'Complex', 'Real', 'Imag'];

  afterEach(() => {
    delete process.env.INTERLEAVE_LONG_CONV;
  });

  it('uses FFT where the backend has fast FFT kernels and DFT matmuls on cpu and wasm', async () => {
    await selectBackend('wasm');
    expect(longConvolutionMethodFor(capabilitiesOf('wasm'))).toBe('dft');
    expect(longConvolutionMethodFor(capabilitiesOf('cpu'))).toBe('dft');
    expect(capabilitiesOf('cpu').hasKernel('FFT')).toBe(true);
    expect(longConvolutionMethodFor(fakeBackend('webgpu', fftKernels))).toBe('fft');
    expect(longConvolutionMethodFor(fakeBackend('tensorflow', fftKernels))).toBe('fft');
    expect(longConvolutionMethodFor(fakeBackend('other', ['FFT', 'IFFT']))).toBe('dft');
  });

  it('follows INTERLEAVE_LONG_CONV', () => {
    process.env.INTERLEAVE_LONG_CONV = 'fft';
    expect(longConvolutionMethodFor(fakeBackend('wasm', []))).toBe('fft');
    process.env.INTERLEAVE_LONG_CONV = 'dft';
    expect(longConvolutionMethodFor(fakeBackend('webgpu', fftKernels))).toBe('dft');
  });

  it('rejects a filter of the wrong shape', () => {
    const x = tf.zeros([1, 4, 2]) as tf.Tensor3D;
    const h = tf.zeros([2, 4]) as tf.Tensor2D;
    expect(() => causalLongConvolution(x, h, 'dft')).toThrow(/needs \[L, C\]/);
    tf.dispose([x, h]);
  });
});
