import { FLAT_INDEX_WGSL, f32Bits, flatWorkgroups, GpuKernelContext } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';

/**
 * One AdamW update of one parameter as a single WGSL dispatch on webgpu, in the same arithmetic
 * order as the tf-op form in adamw.ts: the new parameter and both moments come out of one pass
 * over (parameter, gradient, m, v), where the tf-op form runs about a dozen element-wise
 * dispatches (and as many temporary buffers) per parameter.
 */
export const ADAMW_KERNEL = 'InterleaveAdamWUpdate';

export interface AdamWStep {
  beta1: number;
  beta2: number;
  eps: number;
  learningRate: number;
  /** 1 − lr·wd for decayed parameters, else 1. */
  decayFactor: number;
  correction1: number;
  correction2: number;
}

function shader(): string {
  return `
@group(0) @binding(0) var<storage, read> parameter: array<f32>;
@group(0) @binding(1) var<storage, read> gradient: array<f32>;
@group(0) @binding(2) var<storage, read> firstMoment: array<f32>;
@group(0) @binding(3) var<storage, read> secondMoment: array<f32>;
@group(0) @binding(4) var<storage, read_write> nextParameter: array<f32>;
@group(0) @binding(5) var<storage, read_write> nextFirst: array<f32>;
@group(0) @binding(6) var<storage, read_write> nextSecond: array<f32>;
struct Step {
  count: u32, beta1: f32, beta2: f32, eps: f32, learningRate: f32, decayFactor: f32, correction1: f32, correction2: f32,
};
@group(0) @binding(7) var<uniform> step: Step;
${FLAT_INDEX_WGSL}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = flatIndex(id, groups);
  if (i >= step.count) { return; }
  let g = gradient[i];
  let m = firstMoment[i] * step.beta1 + g * (1.0 - step.beta1);
  let v = secondMoment[i] * step.beta2 + g * g * (1.0 - step.beta2);
  nextFirst[i] = m;
  nextSecond[i] = v;
  let denominator = sqrt(v / step.correction2) + step.eps;
  nextParameter[i] = parameter[i] * step.decayFactor - m / denominator * (step.learningRate / step.correction1);
}`;
}

if (tf.getKernel(ADAMW_KERNEL, 'webgpu') === undefined) {
  tf.registerKernel({
    kernelName: ADAMW_KERNEL,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { parameter, gradient, firstMoment, secondMoment } = inputs as Record<
        'parameter' | 'gradient' | 'firstMoment' | 'secondMoment',
        tf.TensorInfo
      >;
      const step = attrs as unknown as AdamWStep;
      const context = new GpuKernelContext(backend as tf.KernelBackend);
      const count = parameter.shape.reduce((a, b) => a * b, 1);
      const outputs = [0, 1, 2].map(() => context.allocate([...parameter.shape]));
      context.run({
        key: ADAMW_KERNEL,
        shader,
        bindings: [parameter, gradient, firstMoment, secondMoment, ...outputs],
        uniforms: [
          count,
          ...[
            step.beta1,
            step.beta2,
            step.eps,
            step.learningRate,
            step.decayFactor,
            step.correction1,
            step.correction2,
          ].map(f32Bits),
        ],
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
  step: AdamWStep,
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  return tf
    .engine()
    .runKernel(
      ADAMW_KERNEL,
      { parameter, gradient, firstMoment, secondMoment },
      step as unknown as tf.NamedAttrMap,
    ) as [tf.Tensor, tf.Tensor, tf.Tensor];
}
