import { f32Bits, GpuKernelContext, storageBindingsWgsl } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { registerOnce } from '../scan/kernels/register-once.js';

/**
 * RMSNorm over the last axis as two WGSL kernels for webgpu: one workgroup per row reduces
 * Σx² in shared memory and writes y = x·r·w together with r = 1/sqrt(mean x² + eps), which the
 * backward pass reuses:
 *   dx = r·(dy⊙w) − x·r³·mean(dy⊙w⊙x)
 * The tf-op form costs 6 dispatches forward and about 12 backward; this one 1 and 2 + a tfjs
 * reduction: dw = Σ_rows dy⊙x·r is summed per block of ROWS rows by a third kernel, a thread per
 * channel, into [width, blocks] partials that one reduction over the last axis finishes (a tfjs
 * sum over the leading axes first transposes the whole [rows, width] product).
 */
export const RMS_NORM_KERNEL = 'InterleaveRmsNorm';
export const RMS_NORM_GRAD_KERNEL = 'InterleaveRmsNormGrad';
export const RMS_NORM_WEIGHT_GRAD_KERNEL = 'InterleaveRmsNormWeightGrad';

/**
 * Rows each thread of the weight-gradient kernel sums (at least: more where the blocks would
 * exceed a dispatch dimension's limit), and channels per workgroup (a thread each).
 */
const ROWS = 256;
const CHANNELS = 64;

const WEIGHT_GRAD_SHADER = `
${storageBindingsWgsl(['x', 'rstd', 'dy'], ['partials'])}
struct Dims { rows: u32, width: u32, blocks: u32, rowsPerBlock: u32 };
@group(0) @binding(4) var<uniform> dims: Dims;

@compute @workgroup_size(${CHANNELS})
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let c = group.x * ${CHANNELS}u + lane;
  let block = group.y;
  if (c >= dims.width) { return; }
  let last = min((block + 1u) * dims.rowsPerBlock, dims.rows);
  var sum = 0.0;
  for (var r = block * dims.rowsPerBlock; r < last; r++) {
    sum += dy[r * dims.width + c] * x[r * dims.width + c] * rstd[r];
  }
  partials[c * dims.blocks + block] = sum;
}`;

const THREADS = 64;

function shader(pass: 'forward' | 'backward'): string {
  const forward = pass === 'forward';
  const bindings = forward ? ['x', 'weight'] : ['x', 'weight', 'rstd', 'dy'];
  const outputs = forward ? ['y', 'rstd'] : ['dx'];
  const declarations = storageBindingsWgsl(bindings, outputs);
  // Forward sums x²; backward sums (dy·w)·x.
  const term = forward ? 'x[base + i] * x[base + i]' : 'dy[base + i] * weight[i] * x[base + i]';
  const finish = forward
    ? `let r = inverseSqrt(partial[0] / f32(dims.width) + dims.eps);
  if (lane == 0u) { rstd[row] = r; }
  for (var i = lane; i < dims.width; i += ${THREADS}u) { y[base + i] = x[base + i] * r * weight[i]; }`
    : `let r = rstd[row];
  let projection = partial[0] / f32(dims.width) * r * r * r;
  for (var i = lane; i < dims.width; i += ${THREADS}u) {
    dx[base + i] = r * dy[base + i] * weight[i] - x[base + i] * projection;
  }`;
  return `
${declarations}
struct Dims { rows: u32, width: u32, eps: f32 };
@group(0) @binding(${bindings.length + outputs.length}) var<uniform> dims: Dims;
var<workgroup> partial: array<f32, ${THREADS}>;

@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
  // Rows past the end still reach every barrier, then write nothing.
  let row = min(group.x + group.y * groups.x, dims.rows - 1u);
  let base = row * dims.width;
  var sum = 0.0;
  for (var i = lane; i < dims.width; i += ${THREADS}u) { sum += ${term}; }
  partial[lane] = sum;
  workgroupBarrier();
  for (var stride = ${THREADS / 2}u; stride > 0u; stride /= 2u) {
    if (lane < stride) { partial[lane] += partial[lane + stride]; }
    workgroupBarrier();
  }
  if (group.x + group.y * groups.x >= dims.rows) { return; }
  ${finish}
}`;
}

function rowsOf(x: tf.TensorInfo): { rows: number; width: number } {
  const width = x.shape.at(-1) as number;
  return { rows: x.shape.reduce((product, size) => product * size, 1) / width, width };
}

function rowWorkgroups(rows: number, limit: number): [number, number] {
  const width = Math.min(rows, limit);
  return [width, Math.ceil(rows / width)];
}

function uniforms(rows: number, width: number, eps: number): number[] {
  return [rows, width, f32Bits(eps)];
}

registerOnce(RMS_NORM_KERNEL, 'webgpu', ({ inputs, backend, attrs }) => {
  const { x, weight } = inputs as Record<'x' | 'weight', tf.TensorInfo>;
  const context = new GpuKernelContext(backend as tf.KernelBackend);
  const { rows, width } = rowsOf(x);
  const y = context.allocate([...x.shape]);
  const rstd = context.allocate([...x.shape.slice(0, -1), 1]);
  context.run({
    key: RMS_NORM_KERNEL,
    shader: () => shader('forward'),
    bindings: [x, weight, y, rstd],
    uniforms: uniforms(rows, width, (attrs as { eps: number }).eps),
    workgroups: rowWorkgroups(rows, context.limits.maxComputeWorkgroupsPerDimension),
  });
  return [y, rstd];
});

registerOnce(RMS_NORM_GRAD_KERNEL, 'webgpu', ({ inputs, backend }) => {
  const { x, weight, rstd, dy } = inputs as Record<'x' | 'weight' | 'rstd' | 'dy', tf.TensorInfo>;
  const context = new GpuKernelContext(backend as tf.KernelBackend);
  const { rows, width } = rowsOf(x);
  const dx = context.allocate([...x.shape]);
  context.run({
    key: RMS_NORM_GRAD_KERNEL,
    shader: () => shader('backward'),
    bindings: [x, weight, rstd, dy, dx],
    uniforms: uniforms(rows, width, 0),
    workgroups: rowWorkgroups(rows, context.limits.maxComputeWorkgroupsPerDimension),
  });
  return dx;
});

registerOnce(RMS_NORM_WEIGHT_GRAD_KERNEL, 'webgpu', ({ inputs, backend }) => {
  const { x, rstd, dy } = inputs as Record<'x' | 'rstd' | 'dy', tf.TensorInfo>;
  const context = new GpuKernelContext(backend as tf.KernelBackend);
  const { rows, width } = rowsOf(x);
  const rowsPerBlock = Math.max(ROWS, Math.ceil(rows / context.limits.maxComputeWorkgroupsPerDimension));
  const blocks = Math.ceil(rows / rowsPerBlock);
  const partials = context.allocate([width, blocks]);
  context.run({
    key: RMS_NORM_WEIGHT_GRAD_KERNEL,
    shader: () => WEIGHT_GRAD_SHADER,
    bindings: [x, rstd, dy, partials],
    uniforms: [rows, width, blocks, rowsPerBlock],
    workgroups: [Math.ceil(width / CHANNELS), blocks],
  });
  return partials;
});

/** RMSNorm through the fused kernels, differentiable in x and the weight. */
export function fusedRmsNorm<T extends tf.Tensor>(x: T, weight: tf.Tensor, eps: number): T {
  const norm = tf.customGrad((input, scale, save) => {
    const [y, rstd] = tf.engine().runKernel(
      RMS_NORM_KERNEL,
      { x: input, weight: scale } as tf.NamedTensorMap,
      {
        eps,
      } as unknown as tf.NamedAttrMap,
    ) as [tf.Tensor, tf.Tensor];
    (save as tf.GradSaveFunc)([input as tf.Tensor, scale as tf.Tensor, rstd]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ws, rs] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        const dx = tf.engine().runKernel(RMS_NORM_GRAD_KERNEL, { x: xs, weight: ws, rstd: rs, dy }) as tf.Tensor;
        const partials = tf.engine().runKernel(RMS_NORM_WEIGHT_GRAD_KERNEL, { x: xs, rstd: rs, dy }) as tf.Tensor;
        const dw = tf.tidy(() => partials.sum(1).reshape(ws.shape));
        partials.dispose();
        return [dx, dw];
      },
    };
  });
  return norm(x, weight) as T;
}
