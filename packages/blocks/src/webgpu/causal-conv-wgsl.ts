import {
  FLAT_INDEX_WGSL,
  flatWorkgroups,
  GpuKernelContext,
  sequencesPerCall,
  storageBindingsWgsl,
  sumPairwise,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { registerOnce } from '../scan/kernels/register-once.js';
import { inBatchChunks } from '../scan/selective-scan.js';

/**
 * The causal depthwise convolution of ops/causal-depthwise-conv.ts as three WGSL kernels for
 * webgpu. The tf-op form (K shifted multiply-adds) costs about 18 dispatches forward and 30
 * backward per layer for K = 4 (pads, slices, products, sums over the batch, transposes for them);
 * in the Zoology Mamba step on the H200 those small dispatches were most of its 260 element-wise,
 * 56 slice and 40 pad dispatches (docs/gpu.md, sixth session). Here:
 *
 * - Forward, a thread per output: y[b,t,c] = Σ_k w[c,k]·x[b, t−(K−1)+k, c] + bias[c], the taps
 *   summed in the tf-op form's order (k = 0 first, the bias last), taps before the start skipped.
 * - Input gradient, a thread per input: dx[b,t,c] = Σ_k w[c,k]·dy[b, t+(K−1)−k, c].
 * - Weight and bias gradients: a thread per (channel, block of ≥ ROWS rows) sums
 *   dy[r,c]·x[r−(K−1)+k, c] and dy[r,c] over its rows into [C·K, blocks] and [C, blocks]
 *   partials; one tfjs reduction over the last axis finishes each. No atomics: results repeat
 *   bit for bit.
 */
export const CAUSAL_CONV_KERNEL = 'InterleaveCausalConv';
export const CAUSAL_CONV_INPUT_GRAD_KERNEL = 'InterleaveCausalConvInputGrad';
export const CAUSAL_CONV_WEIGHT_GRAD_KERNEL = 'InterleaveCausalConvWeightGrad';

/**
 * Rows (batch × time positions) each thread of the weight-gradient kernel sums, at least: more
 * where the blocks would exceed a dispatch dimension's workgroup limit.
 */
const ROWS = 256;
/** Channels per workgroup of the weight-gradient kernel, one per thread. */
const CHANNELS = 64;

/** The uniforms, and the kernel's tap count as a constant: loops over it unroll, `sums` stays in registers. */
const dimsWgsl = (taps: number) =>
  `struct Dims { rows: u32, length: u32, channels: u32, blocks: u32, rowsPerBlock: u32 };\nconst TAPS = ${taps}u;`;

function forwardShader(hasBias: boolean, taps: number): string {
  const inputs = hasBias ? ['x', 'weight', 'bias'] : ['x', 'weight'];
  return `
${storageBindingsWgsl(inputs, ['y'])}
${dimsWgsl(taps)}
@group(0) @binding(${inputs.length + 1}) var<uniform> dims: Dims;
${FLAT_INDEX_WGSL}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = flatIndex(id, groups);
  if (i >= dims.rows * dims.channels) { return; }
  let c = i % dims.channels;
  let t = (i / dims.channels) % dims.length;
  var sum = 0.0;
  for (var k = 0u; k < TAPS; k++) {
    // Input position t − (K−1) + k; before the sequence's start the tap reads zero padding.
    if (t + k + 1u < TAPS) { continue; }
    sum += x[i + k * dims.channels - (TAPS - 1u) * dims.channels] * weight[c * TAPS + k];
  }
  y[i] = ${hasBias ? 'sum + bias[c]' : 'sum'};
}`;
}

function inputGradShader(taps: number): string {
  return `
${storageBindingsWgsl(['dy', 'weight'], ['dx'])}
${dimsWgsl(taps)}
@group(0) @binding(3) var<uniform> dims: Dims;
${FLAT_INDEX_WGSL}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = flatIndex(id, groups);
  if (i >= dims.rows * dims.channels) { return; }
  let c = i % dims.channels;
  let t = (i / dims.channels) % dims.length;
  var sum = 0.0;
  for (var k = 0u; k < TAPS; k++) {
    // Output position t + (K−1) − k reads this input through tap k; past the end there is none.
    let shift = TAPS - 1u - k;
    if (t + shift >= dims.length) { continue; }
    sum += dy[i + shift * dims.channels] * weight[c * TAPS + k];
  }
  dx[i] = sum;
}`;
}

function weightGradShader(taps: number): string {
  return `
${storageBindingsWgsl(['x', 'dy'], ['weightPartials', 'biasPartials'])}
${dimsWgsl(taps)}
@group(0) @binding(4) var<uniform> dims: Dims;

@compute @workgroup_size(${CHANNELS})
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let c = group.x * ${CHANNELS}u + lane;
  let block = group.y;
  if (c >= dims.channels) { return; }
  let first = block * dims.rowsPerBlock;
  let last = min(first + dims.rowsPerBlock, dims.rows);
  var biasSum = 0.0;
  var sums: array<f32, TAPS>;
  for (var k = 0u; k < TAPS; k++) { sums[k] = 0.0; }
  for (var r = first; r < last; r++) {
    let g = dy[r * dims.channels + c];
    biasSum += g;
    let t = r % dims.length;
    for (var k = 0u; k < TAPS; k++) {
      if (t + k + 1u < TAPS) { continue; }
      sums[k] += g * x[(r + k + 1u - TAPS) * dims.channels + c];
    }
  }
  for (var k = 0u; k < TAPS; k++) { weightPartials[(c * TAPS + k) * dims.blocks + block] = sums[k]; }
  biasPartials[c * dims.blocks + block] = biasSum;
}`;
}

/** The widest kernel taken here (the shaders unroll their loops over the taps). */
export const MAX_FUSED_TAPS = 16;

interface Dims {
  rows: number;
  length: number;
  channels: number;
  taps: number;
  blocks: number;
  rowsPerBlock: number;
}

function dimsOf(x: tf.TensorInfo, weight: tf.TensorInfo, maxGroups: number): Dims {
  const [batch, length, channels] = x.shape as [number, number, number];
  const rows = batch * length;
  const rowsPerBlock = Math.max(ROWS, Math.ceil(rows / maxGroups));
  const blocks = Math.ceil(rows / rowsPerBlock);
  return { rows, length, channels, taps: weight.shape[2] as number, blocks, rowsPerBlock };
}

const uniformsOf = ({ rows, length, channels, blocks, rowsPerBlock }: Dims) => [
  rows,
  length,
  channels,
  blocks,
  rowsPerBlock,
];

registerOnce(CAUSAL_CONV_KERNEL, 'webgpu', ({ inputs, backend }) => {
  const { x, weight, bias } = inputs as Record<'x' | 'weight' | 'bias', tf.TensorInfo | undefined>;
  const context = new GpuKernelContext(backend as tf.KernelBackend);
  const dims = dimsOf(x as tf.TensorInfo, weight as tf.TensorInfo, context.limits.maxComputeWorkgroupsPerDimension);
  const y = context.allocate([...(x as tf.TensorInfo).shape]);
  const hasBias = bias !== undefined;
  context.run({
    key: `${CAUSAL_CONV_KERNEL}_K${dims.taps}${hasBias ? '' : '_noBias'}`,
    shader: () => forwardShader(hasBias, dims.taps),
    bindings: [x, weight, ...(hasBias ? [bias] : []), y] as tf.TensorInfo[],
    uniforms: uniformsOf(dims),
    workgroups: flatWorkgroups(dims.rows * dims.channels, context.limits),
  });
  return y;
});

registerOnce(CAUSAL_CONV_INPUT_GRAD_KERNEL, 'webgpu', ({ inputs, backend }) => {
  const { dy, weight } = inputs as Record<'dy' | 'weight', tf.TensorInfo>;
  const context = new GpuKernelContext(backend as tf.KernelBackend);
  const dims = dimsOf(dy, weight, context.limits.maxComputeWorkgroupsPerDimension);
  const dx = context.allocate([...dy.shape]);
  context.run({
    key: `${CAUSAL_CONV_INPUT_GRAD_KERNEL}_K${dims.taps}`,
    shader: () => inputGradShader(dims.taps),
    bindings: [dy, weight, dx],
    uniforms: uniformsOf(dims),
    workgroups: flatWorkgroups(dims.rows * dims.channels, context.limits),
  });
  return dx;
});

registerOnce(CAUSAL_CONV_WEIGHT_GRAD_KERNEL, 'webgpu', ({ inputs, backend }) => {
  const { x, dy, weight } = inputs as Record<'x' | 'dy' | 'weight', tf.TensorInfo>;
  const context = new GpuKernelContext(backend as tf.KernelBackend);
  const dims = dimsOf(x, weight, context.limits.maxComputeWorkgroupsPerDimension);
  const weightPartials = context.allocate([dims.channels * dims.taps, dims.blocks]);
  const biasPartials = context.allocate([dims.channels, dims.blocks]);
  context.run({
    key: `${CAUSAL_CONV_WEIGHT_GRAD_KERNEL}_K${dims.taps}`,
    shader: () => weightGradShader(dims.taps),
    bindings: [x, dy, weightPartials, biasPartials],
    uniforms: uniformsOf(dims),
    workgroups: [Math.ceil(dims.channels / CHANNELS), dims.blocks],
  });
  return [weightPartials, biasPartials];
});

/**
 * `causalDepthwiseConv1d` through the fused kernels: same inputs and result, differentiable in
 * x, the weight [C, 1, K] and the bias. Batches too large for one storage binding run in chunks
 * of sequences, their weight and bias gradients added.
 */
export function fusedCausalDepthwiseConv1d(x: tf.Tensor3D, weight: tf.Tensor3D, bias?: tf.Tensor1D): tf.Tensor3D {
  const [batch, length, channels] = x.shape;
  const perCall = sequencesPerCall(batch, length * channels, `a causal convolution over [${x.shape.join(', ')}]`);
  const run = (input: tf.Tensor, w: tf.Tensor, b: tf.Tensor | undefined) =>
    tf.engine().runKernel(CAUSAL_CONV_KERNEL, { x: input, weight: w, ...(b ? { bias: b } : {}) }) as tf.Tensor;
  const gradients = (xs: tf.Tensor, w: tf.Tensor, dy: tf.Tensor) => {
    const dx = tf.engine().runKernel(CAUSAL_CONV_INPUT_GRAD_KERNEL, { dy, weight: w }) as tf.Tensor;
    const [weightPartials, biasPartials] = tf
      .engine()
      .runKernel(CAUSAL_CONV_WEIGHT_GRAD_KERNEL, { x: xs, dy, weight: w }) as [tf.Tensor, tf.Tensor];
    const dw = tf.tidy(() => weightPartials.sum(1).reshape(w.shape));
    const db = tf.tidy(() => biasPartials.sum(1));
    tf.dispose([weightPartials, biasPartials]);
    return { dx, dw, db };
  };
  const convolve = (input: tf.Tensor, w: tf.Tensor, b: tf.Tensor | undefined, save: tf.GradSaveFunc) => {
    const chunks = inBatchChunks([input], perCall).map(([piece]) => run(piece as tf.Tensor, w, b));
    const y = chunks.length === 1 ? (chunks[0] as tf.Tensor) : tf.concat(chunks, 0);
    if (chunks.length > 1) tf.dispose(chunks);
    save([input, w]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, ws] = saved as [tf.Tensor, tf.Tensor];
        const parts = inBatchChunks([xs, dy], perCall).map(([xPiece, dyPiece]) =>
          gradients(xPiece as tf.Tensor, ws, dyPiece as tf.Tensor),
        );
        if (parts.length === 1) {
          const { dx, dw, db } = parts[0] as { dx: tf.Tensor; dw: tf.Tensor; db: tf.Tensor };
          return b === undefined ? [dx, dw] : [dx, dw, db];
        }
        const dx = tf.concat(
          parts.map((part) => part.dx),
          0,
        );
        // Added pairwise: tf.addN binds every part in one shader, over webgpu's 8 storage buffers.
        const dw = sumPairwise(parts.map((part) => part.dw));
        const db = sumPairwise(parts.map((part) => part.db));
        tf.dispose(parts.flatMap((part) => [part.dx, part.dw, part.db]));
        return b === undefined ? [dx, dw] : [dx, dw, db];
      },
    };
  };
  if (bias === undefined) {
    const withoutBias = tf.customGrad((input, w, save) =>
      convolve(input as tf.Tensor, w as tf.Tensor, undefined, save as tf.GradSaveFunc),
    );
    return withoutBias(x, weight) as tf.Tensor3D;
  }
  const withBias = tf.customGrad((input, w, b, save) =>
    convolve(input as tf.Tensor, w as tf.Tensor, b as tf.Tensor, save as tf.GradSaveFunc),
  );
  return withBias(x, weight, bias) as tf.Tensor3D;
}
