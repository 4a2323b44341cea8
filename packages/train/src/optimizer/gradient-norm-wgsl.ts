import { f32Bits, GpuKernelContext, storageBindingsWgsl } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';

/**
 * The global gradient norm and the clip factor on webgpu in a few dispatches, whatever the number
 * of parameters: the tf-op form (clip-gradients.ts) squares, sums and adds each gradient on its
 * own, about four dispatches per parameter (52 of the 147 in Zoology's 2-layer attention step),
 * and then multiplies every gradient by the factor (one more each).
 *
 * - `InterleaveSquareSums` sums up to 7 tensors (a shader may bind 8 storage buffers) in chunks of
 *   2,048 values a workgroup, squared or not, into one partial sum per chunk;
 * - `InterleaveGradientScale` adds up to 6 tensors of partial sums in one workgroup and writes the
 *   AdamW kernel's scalars with the factor in: [lr, 1 − lr·wd, 1 − β1^t, 1 − β2^t, s·scale, norm],
 *   from the step's scalars [lr, 1 − lr·wd, 1 − β1^t, 1 − β2^t, s]. The AdamW kernel multiplies
 *   each gradient by entry 4 as it reads it, so no clipped gradient is ever written.
 *
 * Sums run in a fixed order (threads in turn, then a tree in workgroup memory), so a step's norm
 * repeats bit for bit.
 */
export const SQUARE_SUMS_KERNEL = 'InterleaveSquareSums';
export const GRADIENT_SCALE_KERNEL = 'InterleaveGradientScale';

/** Threads per workgroup, and values each thread sums per chunk. */
const THREADS = 256;
const PER_THREAD = 8;
const CHUNK = THREADS * PER_THREAD;
/** Tensors one dispatch reads: 8 storage buffers a shader stage, less the output (and the scalars). */
const SUM_INPUTS = 7;
const SCALE_INPUTS = 6;

/** The PyTorch `clip_grad_norm_` guard against a zero norm, as clip-gradients.ts adds it. */
const NORM_EPSILON = 1e-6;

const TREE_SUM = `  partialSums[lane] = total;
  workgroupBarrier();
  for (var width = ${THREADS / 2}u; width > 0u; width >>= 1u) {
    if (lane < width) { partialSums[lane] += partialSums[lane + width]; }
    workgroupBarrier();
  }`;

const chunksOf = (size: number) => Math.ceil(size / CHUNK);

function squareSumsShader(inputs: number, square: boolean): string {
  const names = Array.from({ length: inputs }, (_, k) => `x${k}`);
  const fields = names.map((_, k) => `size${k}: u32, start${k}: u32`).join(', ');
  const reads = names
    .map(
      (name, k) => `  if (group >= dims.start${k} && group < dims.start${k} + (dims.size${k} + CHUNK - 1u) / CHUNK) {
    let base = (group - dims.start${k}) * CHUNK + lane;
    for (var e = 0u; e < ${PER_THREAD}u; e++) {
      let i = base + e * ${THREADS}u;
      if (i < dims.size${k}) { let value = ${name}[i]; total += ${square ? 'value * value' : 'value'}; }
    }
  }`,
    )
    .join('\n');
  return `
${storageBindingsWgsl(names, ['partials'])}
struct Dims { groups: u32, ${fields} };
@group(0) @binding(${inputs + 1}) var<uniform> dims: Dims;
const CHUNK = ${CHUNK}u;
var<workgroup> partialSums: array<f32, ${THREADS}>;

@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) id: vec3<u32>, @builtin(num_workgroups) grid: vec3<u32>,
        @builtin(local_invocation_index) lane: u32) {
  let group = id.x + id.y * grid.x;
  var total = 0.0;
${reads}
${TREE_SUM}
  if (lane == 0u && group < dims.groups) { partials[group] = partialSums[0]; }
}`;
}

function gradientScaleShader(inputs: number): string {
  const names = Array.from({ length: inputs }, (_, k) => `p${k}`);
  const fields = names.map((_, k) => `size${k}: u32`).join(', ');
  const reads = names
    .map((name, k) => `  for (var i = lane; i < dims.size${k}; i += ${THREADS}u) { total += ${name}[i]; }`)
    .join('\n');
  return `
${storageBindingsWgsl(['stepScalars', ...names], ['scalars'])}
struct Dims { clips: u32, maxNorm: f32, ${fields} };
@group(0) @binding(${inputs + 2}) var<uniform> dims: Dims;
var<workgroup> partialSums: array<f32, ${THREADS}>;

@compute @workgroup_size(${THREADS})
fn main(@builtin(local_invocation_index) lane: u32) {
  var total = 0.0;
${reads}
${TREE_SUM}
  if (lane != 0u) { return; }
  let norm = sqrt(partialSums[0]);
  // As clip-gradients.ts: min(1, maxNorm / (norm + 1e-6)), or 1 without a clip.
  let clip = select(1.0, min(1.0, dims.maxNorm / (norm + ${NORM_EPSILON})), dims.clips == 1u);
  for (var k = 0u; k < 4u; k++) { scalars[k] = stepScalars[k]; }
  scalars[4] = stepScalars[4] * clip;
  scalars[5] = norm;
}`;
}

interface SquareSumsAttrs {
  square: boolean;
}

if (tf.getKernel(SQUARE_SUMS_KERNEL, 'webgpu') === undefined) {
  tf.registerKernel({
    kernelName: SQUARE_SUMS_KERNEL,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const tensors = Object.values(inputs) as tf.TensorInfo[];
      const { square } = attrs as unknown as SquareSumsAttrs;
      const context = new GpuKernelContext(backend as tf.KernelBackend);
      const sizes = tensors.map((tensor) => tensor.shape.reduce((a, b) => a * b, 1));
      const starts = sizes.map((_, k) => sizes.slice(0, k).reduce((sum, size) => sum + chunksOf(size), 0));
      const groups = sizes.reduce((sum, size) => sum + chunksOf(size), 0);
      const partials = context.allocate([groups]);
      const width = Math.min(groups, context.limits.maxComputeWorkgroupsPerDimension);
      context.run({
        key: `${SQUARE_SUMS_KERNEL}/${tensors.length}/${square ? 'squared' : 'plain'}`,
        shader: () => squareSumsShader(tensors.length, square),
        bindings: [...tensors, partials],
        uniforms: [groups, ...sizes.flatMap((size, k) => [size, starts[k] as number])],
        workgroups: [width, Math.ceil(groups / width)],
      });
      return partials;
    },
  });
}

interface GradientScaleAttrs {
  clips: boolean;
  maxNorm: number;
}

if (tf.getKernel(GRADIENT_SCALE_KERNEL, 'webgpu') === undefined) {
  tf.registerKernel({
    kernelName: GRADIENT_SCALE_KERNEL,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { stepScalars, ...rest } = inputs as Record<string, tf.TensorInfo>;
      const partials = Object.values(rest);
      const { clips, maxNorm } = attrs as unknown as GradientScaleAttrs;
      const context = new GpuKernelContext(backend as tf.KernelBackend);
      const scalars = context.allocate([6]);
      context.run({
        key: `${GRADIENT_SCALE_KERNEL}/${partials.length}`,
        shader: () => gradientScaleShader(partials.length),
        bindings: [stepScalars as tf.TensorInfo, ...partials, scalars],
        uniforms: [
          clips ? 1 : 0,
          f32Bits(maxNorm),
          ...partials.map((partial) => partial.shape.reduce((a, b) => a * b, 1)),
        ],
        workgroups: [1],
      });
      return scalars;
    },
  });
}

/**
 * Whether the norm and clip of these gradients can run here: on webgpu, every gradient small
 * enough to bind whole (a larger one takes the tf-op form, which tfjs splits for it).
 */
export function fusedGradientScaleAvailable(gradients: readonly tf.Tensor[]): boolean {
  if (tf.getKernel(GRADIENT_SCALE_KERNEL, tf.getBackend()) === undefined) return false;
  const limit = (tf.backend() as unknown as { device: { limits: { maxStorageBufferBindingSize: number } } }).device
    .limits.maxStorageBufferBindingSize;
  return gradients.length > 0 && gradients.every((gradient) => gradient.size * 4 <= limit);
}

function inGroupsOf<T>(items: readonly T[], size: number): T[][] {
  const groups: T[][] = [];
  for (let start = 0; start < items.length; start += size) groups.push(items.slice(start, start + size));
  return groups;
}

function sums(tensors: readonly tf.Tensor[], square: boolean): tf.Tensor1D {
  const inputs = Object.fromEntries(tensors.map((tensor, k) => [`x${k}`, tensor]));
  return tf.engine().runKernel(SQUARE_SUMS_KERNEL, inputs, { square } as unknown as tf.NamedAttrMap) as tf.Tensor1D;
}

/**
 * The AdamW kernel's scalars for this step with the clip factor in (see the top of this file):
 * [lr, 1 − lr·wd, 1 − β1^t, 1 − β2^t, s·min(1, maxNorm / (‖g‖ + 1e-6)), ‖g‖], where
 * `stepScalars` is `AdamW.stepScalars(...)` as a tensor ([..., s]); `maxNorm` null clips nothing.
 * The global norm ‖g‖ is over every gradient given. Intermediates are disposed.
 */
export function fusedGradientScale(
  gradients: readonly tf.Tensor[],
  maxNorm: number | null,
  stepScalars: tf.Tensor1D,
): tf.Tensor1D {
  return tf.tidy(() => {
    let level = inGroupsOf(gradients, SUM_INPUTS).map((group) => sums(group, true));
    while (level.length > SCALE_INPUTS) level = inGroupsOf(level, SUM_INPUTS).map((group) => sums(group, false));
    const inputs = { stepScalars, ...Object.fromEntries(level.map((partial, k) => [`p${k}`, partial])) };
    return tf.engine().runKernel(GRADIENT_SCALE_KERNEL, inputs, {
      clips: maxNorm !== null,
      maxNorm: maxNorm ?? 0,
    } as unknown as tf.NamedAttrMap) as tf.Tensor1D;
  });
}
