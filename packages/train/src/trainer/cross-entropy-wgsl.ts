import { FLAT_INDEX_WGSL, flatWorkgroups, GpuKernelContext } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';

/**
 * Softmax cross-entropy as two WGSL kernels for webgpu. Forward: one workgroup per row finds the
 * row's maximum and Σ exp in shared memory and writes log Σ exp and the row's loss
 * (log Σ exp − logit[target]). Backward: one thread per logit writes
 *   (exp(logit − log Σ exp) − [j = target]) · weight[row]
 * in a single pass. The tf-op form builds a [rows, vocab] one-hot, log-sum-exp intermediates and,
 * backward, the softmax — each as large as the logits (512 MiB for the reference hybrid at B16).
 */
export const CROSS_ENTROPY_KERNEL = 'InterleaveSoftmaxCrossEntropy';
export const CROSS_ENTROPY_GRAD_KERNEL = 'InterleaveSoftmaxCrossEntropyGrad';

const THREADS = 256;

function forwardShader(): string {
  return `
@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> targets: array<i32>;
@group(0) @binding(2) var<storage, read_write> loss: array<f32>;
@group(0) @binding(3) var<storage, read_write> logNormaliser: array<f32>;
struct Dims { rows: u32, vocab: u32 };
@group(0) @binding(4) var<uniform> dims: Dims;
var<workgroup> partial: array<f32, ${THREADS}>;

fn reduce(lane: u32, useMax: bool) {
  workgroupBarrier();
  for (var stride = ${THREADS / 2}u; stride > 0u; stride /= 2u) {
    if (lane < stride) {
      let other = partial[lane + stride];
      partial[lane] = select(partial[lane] + other, max(partial[lane], other), useMax);
    }
    workgroupBarrier();
  }
}

@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
  let rowIndex = group.x + group.y * groups.x;
  // Workgroups past the last row still reach every barrier, then write nothing.
  let row = min(rowIndex, dims.rows - 1u);
  let base = row * dims.vocab;
  var largest = -3.402823e38;
  for (var j = lane; j < dims.vocab; j += ${THREADS}u) { largest = max(largest, logits[base + j]); }
  partial[lane] = largest;
  reduce(lane, true);
  let rowMax = partial[0];
  workgroupBarrier();
  var sum = 0.0;
  for (var j = lane; j < dims.vocab; j += ${THREADS}u) { sum += exp(logits[base + j] - rowMax); }
  partial[lane] = sum;
  reduce(lane, false);
  if (lane == 0u && rowIndex < dims.rows) {
    let normaliser = rowMax + log(partial[0]);
    logNormaliser[row] = normaliser;
    loss[row] = normaliser - logits[base + u32(targets[row])];
  }
}`;
}

function backwardShader(): string {
  return `
@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read> targets: array<i32>;
@group(0) @binding(2) var<storage, read> logNormaliser: array<f32>;
@group(0) @binding(3) var<storage, read> weight: array<f32>;
@group(0) @binding(4) var<storage, read_write> dlogits: array<f32>;
struct Dims { count: u32, vocab: u32 };
@group(0) @binding(5) var<uniform> dims: Dims;
${FLAT_INDEX_WGSL}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let index = flatIndex(id, groups);
  if (index >= dims.count) { return; }
  let row = index / dims.vocab;
  let j = index % dims.vocab;
  let hit = select(0.0, 1.0, u32(targets[row]) == j);
  dlogits[index] = (exp(logits[index] - logNormaliser[row]) - hit) * weight[row];
}`;
}

function rowWorkgroups(rows: number, limit: number): [number, number] {
  const width = Math.min(rows, limit);
  return [width, Math.ceil(rows / width)];
}

/** Registers unless already registered (tfjs warns on duplicates, e.g. when tests reload modules). */
function registerForWebgpu(kernelName: string, kernelFunc: tf.KernelFunc): void {
  if (tf.getKernel(kernelName, 'webgpu') === undefined)
    tf.registerKernel({ kernelName, backendName: 'webgpu', kernelFunc });
}

registerForWebgpu(CROSS_ENTROPY_KERNEL, ({ inputs, backend }) => {
  const { logits, targets } = inputs as Record<'logits' | 'targets', tf.TensorInfo>;
  const [rows, vocab] = logits.shape as [number, number];
  const context = new GpuKernelContext(backend as tf.KernelBackend);
  const loss = context.allocate([rows]);
  const logNormaliser = context.allocate([rows]);
  context.run({
    key: CROSS_ENTROPY_KERNEL,
    shader: forwardShader,
    bindings: [logits, targets, loss, logNormaliser],
    uniforms: [rows, vocab],
    workgroups: rowWorkgroups(rows, context.limits.maxComputeWorkgroupsPerDimension),
  });
  return [loss, logNormaliser];
});

registerForWebgpu(CROSS_ENTROPY_GRAD_KERNEL, ({ inputs, backend }) => {
  const { logits, targets, logNormaliser, weight } = inputs as Record<
    'logits' | 'targets' | 'logNormaliser' | 'weight',
    tf.TensorInfo
  >;
  const [rows, vocab] = logits.shape as [number, number];
  const context = new GpuKernelContext(backend as tf.KernelBackend);
  const dlogits = context.allocate([rows, vocab]);
  context.run({
    key: CROSS_ENTROPY_GRAD_KERNEL,
    shader: backwardShader,
    bindings: [logits, targets, logNormaliser, weight, dlogits],
    uniforms: [rows * vocab, vocab],
    workgroups: flatWorkgroups(rows * vocab, context.limits),
  });
  return dlogits;
});

/** Whether the current backend runs the fused cross-entropy. */
export function fusedCrossEntropyAvailable(): boolean {
  return tf.getKernel(CROSS_ENTROPY_KERNEL, tf.getBackend()) !== undefined;
}

/**
 * Sum of the cross-entropy of logits [rows, vocab] against int32 targets [rows] over the rows where
 * mask [rows] is 1, through the fused kernels; the same value and gradient as the tf-op form. A sum,
 * not a mean: the head's row chunks (head-objective.ts) add theirs before dividing by the count.
 */
export function fusedMaskedCrossEntropySum(logits: tf.Tensor2D, targets: tf.Tensor1D, mask: tf.Tensor1D): tf.Scalar {
  const loss = tf.customGrad((logitsArg, save) => {
    const [perRow, logNormaliser] = tf.engine().runKernel(CROSS_ENTROPY_KERNEL, {
      logits: logitsArg as tf.Tensor,
      targets,
    }) as [tf.Tensor, tf.Tensor];
    // targets and mask are saved too: the caller may dispose its reshaped copies before the backward pass.
    (save as tf.GradSaveFunc)([logitsArg as tf.Tensor, logNormaliser, targets, mask]);
    return {
      value: perRow.mul(mask).sum() as tf.Scalar,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedLogits, savedNormaliser, savedTargets, savedMask] = saved as [
          tf.Tensor,
          tf.Tensor,
          tf.Tensor,
          tf.Tensor,
        ];
        const weight = tf.tidy(() => savedMask.mul(dy));
        const inputs = { logits: savedLogits, targets: savedTargets, logNormaliser: savedNormaliser, weight };
        const gradient = tf.engine().runKernel(CROSS_ENTROPY_GRAD_KERNEL, inputs) as tf.Tensor;
        weight.dispose();
        return gradient;
      },
    };
  });
  return loss(logits) as tf.Scalar;
}
