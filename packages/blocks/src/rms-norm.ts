import {
  type ComponentContext,
  constantInit,
  type NormFactory,
  type PositionwiseLayer,
  pointwiseFlops,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';

/** RMSNorm: x / sqrt(mean(x²) + eps) · weight, over the last axis. */
export const rmsNorm: NormFactory = {
  create({ dModel, params }: ComponentContext, eps: number): PositionwiseLayer {
    const weight = params.create('weight', [dModel], constantInit(1), { decay: false });
    return {
      apply: <T extends tf.Tensor>(x: T): T =>
        tf.tidy(() => x.mul(tf.rsqrt(x.square().mean(-1, true).add(eps))).mul(weight) as T),
    };
  },
  // Per feature: square, sum, scale by the rsqrt, scale by the weight; then mean, +eps, rsqrt once.
  flops: (dModel) => pointwiseFlops(4 * dModel + 3),
};
