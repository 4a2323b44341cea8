import * as tf from '@tensorflow/tfjs';

export function silu<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => x.mul(tf.sigmoid(x))) as T;
}

/** Exact GELU, as PyTorch's default `nn.GELU()`; tfjs has no built-in op for it. */
export function gelu<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => x.mul(tf.erf(x.mul(Math.SQRT1_2)).add(1)).mul(0.5)) as T;
}

export const ACTIVATIONS = { gelu, silu } as const;
export type ActivationName = keyof typeof ACTIVATIONS;
