/**
 * The initialisation fla's `RWKV7Attention._initialize_weights` gives its layer 0 (a block does not
 * know its index, so every rwkv7 block is initialised, and computes, as fla's first layer): the
 * per-channel profiles below with ratio_0_to_1 = 0 and ratio_1_to_almost0 = 1.
 */
import type { Initializer } from '@interleave/core';

/** n / (D − 1) − 0.5 over the channels. */
export function linearProfile(width: number): Float64Array {
  return Float64Array.from({ length: width }, (_, n) => n / Math.max(width - 1, 1) - 0.5);
}

/** Within each head, the signed square of the position's distance from the head's middle, in [−1, 1]. */
export function zigzagProfile(width: number, headDim: number): Float64Array {
  const middle = (headDim - 1) / 2;
  return Float64Array.from({ length: width }, (_, n) => {
    if (middle === 0) return 0;
    const z = ((n % headDim) - middle) / middle;
    return z * Math.abs(z);
  });
}

/** The token-shift mixes x_r … x_g: 1 − (n / D)^power, shape [1, 1, D]. */
export const shiftMixInit =
  (power: number): Initializer =>
  (_rng, shape) => {
    const width = shape[shape.length - 1] as number;
    return Float32Array.from({ length: width }, (_, n) => 1 - (n / width) ** power);
  };

/** Values given per element. */
export const valuesInit =
  (values: ArrayLike<number>): Initializer =>
  () =>
    Float32Array.from(values);

/**
 * torch.nn.init.orthogonal_(gain) for a [rows, cols] matrix: the Q of a Gaussian matrix's QR
 * (signs fixed so that R's diagonal is positive), transposed when rows < cols, times gain.
 * Modified Gram–Schmidt in float64 gives that Q.
 */
export const orthogonalInit =
  (gain = 1): Initializer =>
  (rng, shape) => {
    const [rows, cols] = shape as [number, number];
    const tall = rows >= cols;
    const [n, m] = tall ? [rows, cols] : [cols, rows]; // orthonormalise m columns of length n
    const columns = Array.from({ length: m }, () => Float64Array.from({ length: n }, () => rng.normal(0, 1)));
    for (let j = 0; j < m; j++) {
      const column = columns[j] as Float64Array;
      for (let i = 0; i < j; i++) {
        const basis = columns[i] as Float64Array;
        let dot = 0;
        for (let e = 0; e < n; e++) dot += (basis[e] as number) * (column[e] as number);
        for (let e = 0; e < n; e++) column[e] = (column[e] as number) - dot * (basis[e] as number);
      }
      let norm = 0;
      for (let e = 0; e < n; e++) norm += (column[e] as number) ** 2;
      norm = Math.sqrt(norm);
      for (let e = 0; e < n; e++) column[e] = (column[e] as number) / norm;
    }
    const out = new Float32Array(rows * cols);
    for (let row = 0; row < rows; row++) {
      for (let col = 0; col < cols; col++) {
        const value = tall ? (columns[col] as Float64Array)[row] : (columns[row] as Float64Array)[col];
        out[row * cols + col] = gain * (value as number);
      }
    }
    return out;
  };
