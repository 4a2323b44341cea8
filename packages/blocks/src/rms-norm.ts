import {
  type ComponentContext,
  constantInit,
  type NormFactory,
  type PositionwiseLayer,
  pointwiseFlops,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { currentBackendHas } from './scan/kernels/register-once.js';
import { fusedRmsNorm, RMS_NORM_KERNEL } from './webgpu/rms-norm-wgsl.js';

/** RMSNorm as tf ops: x / sqrt(mean(x²) + eps) · weight, over the last axis. */
export function rmsNormWithOps<T extends tf.Tensor>(x: T, weight: tf.Tensor, eps: number): T {
  return tf.tidy(() => x.mul(tf.rsqrt(x.square().mean(-1, true).add(eps))).mul(weight) as T);
}

/** RMSNorm: x / sqrt(mean(x²) + eps) · weight, over the last axis; one fused kernel each way where the backend has it (webgpu). */
export const rmsNorm: NormFactory = {
  create({ dModel, params }: ComponentContext, eps: number): PositionwiseLayer {
    const weight = params.create('weight', [dModel], constantInit(1), { decay: false });
    return {
      apply: <T extends tf.Tensor>(x: T): T =>
        currentBackendHas(RMS_NORM_KERNEL)
          ? tf.tidy(() => fusedRmsNorm(x, weight, eps))
          : rmsNormWithOps(x, weight, eps),
    };
  },
  // Per feature: square, sum, scale by the rsqrt, scale by the weight; then mean, +eps, rsqrt once.
  flops: (dModel) => pointwiseFlops(4 * dModel + 3),
};
