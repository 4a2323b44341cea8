import { FLAT_INDEX_WGSL, f32Bits, flatWorkgroups, GpuKernelContext } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';

/**
 * One AdamW update of one parameter as a single WGSL dispatch on webgpu, in the same arithmetic
 * order as the tf-op form in adamw.ts: the new parameter and both moments come out of one pass
 * over (parameter, gradient, m, v), where the tf-op form runs about a dozen element-wise
 * dispatches (and as many temporary buffers) per parameter.
 *
 * What changes from update to update (learning rate, decay factor, bias corrections, the gradient
 * clip factor) is read from a small float32 tensor (`stepScalars`, see `AdamW.stepScalars`), not
 * from the uniforms: a recorded training step (core's webgpu-step-replay.ts) replays the same
 * uniforms every step and writes each step's scalars into that tensor's buffer. The clip factor
 * is computed on the GPU (gradient-norm-wgsl.ts) and each gradient is scaled as it is read here,
 * rounded as the tf-op form's `gradient.mul(scale)` is.
 */
export const ADAMW_KERNEL = 'InterleaveAdamWUpdate';

export interface AdamWConstants {
  beta1: number;
  beta2: number;
  eps: number;
  /** Whether this parameter takes weight decay (then its factor is stepScalars[1], else 1). */
  decays: boolean;
}

function shader(): string {
  return `
@group(0) @binding(0) var<storage, read> parameter: array<f32>;
@group(0) @binding(1) var<storage, read> gradient: array<f32>;
@group(0) @binding(2) var<storage, read> firstMoment: array<f32>;
@group(0) @binding(3) var<storage, read> secondMoment: array<f32>;
// [learning rate, 1 − lr·wd, 1 − β1^t, 1 − β2^t, gradient scale (the clip factor)]
@group(0) @binding(4) var<storage, read> stepScalars: array<f32, 5>;
@group(0) @binding(5) var<storage, read_write> nextParameter: array<f32>;
@group(0) @binding(6) var<storage, read_write> nextFirst: array<f32>;
@group(0) @binding(7) var<storage, read_write> nextSecond: array<f32>;
struct Step { count: u32, beta1: f32, beta2: f32, eps: f32, decays: u32 };
@group(0) @binding(8) var<uniform> step: Step;
${FLAT_INDEX_WGSL}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = flatIndex(id, groups);
  if (i >= step.count) { return; }
  let g = gradient[i] * stepScalars[4];
  let m = firstMoment[i] * step.beta1 + g * (1.0 - step.beta1);
  let v = secondMoment[i] * step.beta2 + g * g * (1.0 - step.beta2);
  nextFirst[i] = m;
  nextSecond[i] = v;
  let learningRate = stepScalars[0];
  let decayFactor = select(1.0, stepScalars[1], step.decays == 1u);
  let denominator = sqrt(v / stepScalars[3]) + step.eps;
  nextParameter[i] = parameter[i] * decayFactor - m / denominator * (learningRate / stepScalars[2]);
}`;
}

if (tf.getKernel(ADAMW_KERNEL, 'webgpu') === undefined) {
  tf.registerKernel({
    kernelName: ADAMW_KERNEL,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { parameter, gradient, firstMoment, secondMoment, stepScalars } = inputs as Record<
        'parameter' | 'gradient' | 'firstMoment' | 'secondMoment' | 'stepScalars',
        tf.TensorInfo
      >;
      const constants = attrs as unknown as AdamWConstants;
      const context = new GpuKernelContext(backend as tf.KernelBackend);
      const count = parameter.shape.reduce((a, b) => a * b, 1);
      const outputs = [0, 1, 2].map(() => context.allocate([...parameter.shape]));
      context.run({
        key: ADAMW_KERNEL,
        shader,
        bindings: [parameter, gradient, firstMoment, secondMoment, stepScalars, ...outputs],
        uniforms: [count, ...[constants.beta1, constants.beta2, constants.eps].map(f32Bits), constants.decays ? 1 : 0],
        workgroups: flatWorkgroups(count, context.limits),
      });
      return outputs;
    },
  });
}

export function fusedAdamWAvailable(): boolean {
  return tf.getKernel(ADAMW_KERNEL, tf.getBackend()) !== undefined;
}

/** The updated parameter, first and second moments (new tensors; the caller assigns them). */
export function fusedAdamWUpdate(
  parameter: tf.Tensor,
  gradient: tf.Tensor,
  firstMoment: tf.Tensor,
  secondMoment: tf.Tensor,
  stepScalars: tf.Tensor1D,
  constants: AdamWConstants,
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  return tf
    .engine()
    .runKernel(
      ADAMW_KERNEL,
      { parameter, gradient, firstMoment, secondMoment, stepScalars },
      constants as unknown as tf.NamedAttrMap,
    ) as [tf.Tensor, tf.Tensor, tf.Tensor];
}
