import * as tf from '@tensorflow/tfjs';

/**
 * Rotary position embedding (RoPE) in the "rotate halves" form: for a head of size d the
 * pairs are (i, i + d/2), rotated by angle position · base^(−2i/d).
 *
 * x [..., L, d] where the second-to-last axis is time; positions start at `offset`.
 */
export function applyRotary<T extends tf.Tensor>(x: T, offset: number, base: number): T {
  return tf.tidy(() => {
    const headDim = x.shape[x.rank - 1] as number;
    const length = x.shape[x.rank - 2] as number;
    const half = headDim / 2;
    const cos = new Float32Array(length * half);
    const sin = new Float32Array(length * half);
    for (let t = 0; t < length; t++) {
      for (let i = 0; i < half; i++) {
        const angle = (offset + t) * base ** ((-2 * i) / headDim);
        cos[t * half + i] = Math.cos(angle);
        sin[t * half + i] = Math.sin(angle);
      }
    }
    const cosT = tf.tensor2d(cos, [length, half]);
    const sinT = tf.tensor2d(sin, [length, half]);
    const [first, second] = tf.split(x, 2, x.rank - 1) as [tf.Tensor, tf.Tensor];
    return tf.concat([first.mul(cosT).sub(second.mul(sinT)), second.mul(cosT).add(first.mul(sinT))], x.rank - 1) as T;
  });
}
