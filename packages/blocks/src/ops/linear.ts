import { matmul } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';

/**
 * `x @ weightᵀ + bias` over the last axis, with `weight` in PyTorch's [out, in] layout so that
 * checkpoints need no transposes.
 */
export function linear<T extends tf.Tensor>(x: T, weight: tf.Tensor, bias?: tf.Tensor): T {
  return tf.tidy(() => {
    const inFeatures = x.shape[x.rank - 1] as number;
    const outFeatures = weight.shape[0] as number;
    const flat = x.reshape([-1, inFeatures]) as tf.Tensor2D;
    let out: tf.Tensor = matmul(flat, weight, false, true);
    if (bias) out = out.add(bias);
    return out.reshape([...x.shape.slice(0, -1), outFeatures]) as T;
  });
}
