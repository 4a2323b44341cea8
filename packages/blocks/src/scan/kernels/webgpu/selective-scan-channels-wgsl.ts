import { GpuKernelContext } from '@interleave/core';
import type * as tf from '@tensorflow/tfjs';
import { reduceScanGradients, storageBindings } from './selective-scan-common-wgsl.js';
import { type SelectiveScanShape, selectiveScanShape } from './selective-scan-shape.js';

/**
 * The first WGSL selective scan, one thread per (sequence, channel); `INTERLEAVE_SCAN_KERNEL=channels`
 * selects it (selective-scan-wgsl.ts), and it serves d_state above the lanes kernel's 256.
 * Mamba's selective scan (docs/design.md, Mamba block):
 *   h_t = exp(Δ_t ⊗ A) ⊙ h_{t−1} + (Δ_t ⊙ x_t) ⊗ B_t,   y_t = h_t · C_t
 * with x, Δ [B, L, D], A [D, N], B, C [B, L, N]. One GPU thread owns one (sequence, channel)
 * pair and keeps its N states in registers, so the [B, L, D, N] decay and drive tensors of the
 * tf-op scan never exist; the discretisation exp(Δ·A) is computed where it is used.
 *
 * The backward pass stores nothing from the forward pass. It recomputes the states at every
 * CHUNK-th step (a checkpoint pass), then walks each chunk backwards after recomputing its
 * CHUNK states from the checkpoint; B and C's gradients, sums over every channel, are reduced
 * across the 64 channels of a workgroup per step and then across workgroups by a small pass.
 */

/** Steps between stored states in the backward pass: CHUNK·N floats per thread are recomputed. */
const CHUNK = 16;
/**
 * Chunks one backward dispatch walks before handing its carried gradients to the next: bounds
 * the time a single dispatch runs (GPU watchdogs; Mesa's llvmpipe, the CI device, drops the
 * writes of a dispatch walking more than ~900 steps of this shader).
 */
const CHUNKS_PER_DISPATCH = 16;
/** Channels per workgroup of the backward pass (one workgroup reduces dB, dC over them). */
const CHANNELS_PER_GROUP = 64;

/** Floats of the largest buffer a forward or backward call binds for `shape.batch` sequences. */
export function channelsScanLargestBinding(shape: SelectiveScanShape): number {
  return Math.max(scratchLayout(shape).total, shape.batch * shape.length * shape.dInner);
}

function forwardShader(dState: number): string {
  return `
${storageBindings(['x', 'dt', 'decayRate', 'bIn', 'cIn'], ['y'])}
struct Dims { length: u32, dInner: u32 };
@group(0) @binding(6) var<uniform> dims: Dims;
const N = ${dState}u;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let d = id.x;
  let sequence = id.y;
  if (d >= dims.dInner) { return; }
  var rate: array<f32, N>;
  var h: array<f32, N>;
  for (var n = 0u; n < N; n++) { rate[n] = decayRate[d * N + n]; h[n] = 0.0; }
  for (var t = 0u; t < dims.length; t++) {
    let row = sequence * dims.length + t;
    let i = row * dims.dInner + d;
    let delta = dt[i];
    let drive = delta * x[i];
    var out = 0.0;
    for (var n = 0u; n < N; n++) {
      h[n] = exp(delta * rate[n]) * h[n] + drive * bIn[row * N + n];
      out += h[n] * cIn[row * N + n];
    }
    y[i] = out;
  }
}`;
}

/**
 * Scratch layout (floats): [A copy D·N | checkpoints B·chunks·N·D | dA partials B·D·N |
 * carried state gradients B·D·N | dB,dC partials B·L·groups·2N].
 */
function scratchLayout({ batch, length, dInner, dState }: SelectiveScanShape) {
  const groups = Math.ceil(dInner / CHANNELS_PER_GROUP);
  const chunks = Math.ceil(length / CHUNK);
  const checkpoints = dInner * dState;
  const dAPartials = checkpoints + batch * chunks * dState * dInner;
  const carries = dAPartials + batch * dInner * dState;
  const dbcPartials = carries + batch * dInner * dState;
  const total = dbcPartials + batch * length * groups * 2 * dState;
  return { groups, chunks, checkpoints, dAPartials, carries, dbcPartials, total };
}

function checkpointShader(dState: number): string {
  return `
${storageBindings(['x', 'dt', 'bIn'], ['scratch'])}
struct Dims { length: u32, dInner: u32, chunks: u32, checkpoints: u32 };
@group(0) @binding(4) var<uniform> dims: Dims;
const N = ${dState}u;
const CHUNK = ${CHUNK}u;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let d = id.x;
  let sequence = id.y;
  if (d >= dims.dInner) { return; }
  var rate: array<f32, N>;
  var h: array<f32, N>;
  for (var n = 0u; n < N; n++) { rate[n] = scratch[d * N + n]; h[n] = 0.0; }
  for (var t = 0u; t < dims.length; t++) {
    if (t % CHUNK == 0u) {
      let base = dims.checkpoints + ((sequence * dims.chunks + t / CHUNK) * N) * dims.dInner + d;
      for (var n = 0u; n < N; n++) { scratch[base + n * dims.dInner] = h[n]; }
    }
    let row = sequence * dims.length + t;
    let i = row * dims.dInner + d;
    let delta = dt[i];
    let drive = delta * x[i];
    for (var n = 0u; n < N; n++) {
      h[n] = exp(delta * rate[n]) * h[n] + drive * bIn[row * N + n];
    }
  }
}`;
}

function backwardShader(dState: number): string {
  return `
${storageBindings(['x', 'dt', 'bIn', 'cIn', 'dy'], ['scratch', 'dx', 'ddt'])}
struct Dims {
  length: u32, dInner: u32, chunks: u32, groups: u32, checkpoints: u32, dAPartials: u32, carries: u32, dbcPartials: u32,
  // This dispatch walks chunks [firstChunk, endChunk) backwards; the one that starts at the end starts from zero.
  firstChunk: u32, endChunk: u32,
};
@group(0) @binding(8) var<uniform> dims: Dims;
const N = ${dState}u;
const CHUNK = ${CHUNK}u;
const W = ${CHANNELS_PER_GROUP}u;
// Two halves, used by alternate steps, so one barrier per step separates writing from reducing.
var<workgroup> contributions: array<f32, ${2 * CHANNELS_PER_GROUP * 2 * dState}>;

@compute @workgroup_size(${CHANNELS_PER_GROUP})
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let sequence = group.y;
  let channel = group.x * W + lane;
  let live = channel < dims.dInner;
  // Lanes past the last channel read a real channel's inputs, carry a zero gradient and write nothing.
  let d = min(channel, dims.dInner - 1u);
  var rate: array<f32, N>;
  var gh: array<f32, N>;
  var gA: array<f32, N>;
  var start: array<f32, N>;
  var states: array<f32, ${CHUNK * dState}>;
  let carried = (sequence * dims.dInner + d) * N;
  let fromEnd = dims.endChunk == dims.chunks;
  for (var n = 0u; n < N; n++) {
    rate[n] = scratch[d * N + n];
    gh[n] = select(scratch[dims.carries + carried + n], 0.0, fromEnd);
    gA[n] = select(scratch[dims.dAPartials + carried + n], 0.0, fromEnd);
  }
  for (var k = dims.endChunk; k > dims.firstChunk; k--) {
    let chunk = k - 1u;
    let t0 = chunk * CHUNK;
    let base = dims.checkpoints + ((sequence * dims.chunks + chunk) * N) * dims.dInner + d;
    for (var n = 0u; n < N; n++) { start[n] = scratch[base + n * dims.dInner]; }
    for (var j = 0u; j < CHUNK; j++) {
      let t = t0 + j;
      if (t < dims.length) {
        let row = sequence * dims.length + t;
        let i = row * dims.dInner + d;
        let delta = dt[i];
        let drive = delta * x[i];
        for (var n = 0u; n < N; n++) {
          var previous = start[n];
          if (j > 0u) { previous = states[(j - 1u) * N + n]; }
          states[j * N + n] = exp(delta * rate[n]) * previous + drive * bIn[row * N + n];
        }
      }
    }
    for (var jj = CHUNK; jj > 0u; jj--) {
      let j = jj - 1u;
      let t = t0 + j;
      let half = (t % 2u) * W * 2u * N;
      let inRange = t < dims.length;
      let row = sequence * dims.length + min(t, dims.length - 1u);
      if (inRange) {
        let i = row * dims.dInner + d;
        let delta = dt[i];
        let xValue = x[i];
        let gy = select(0.0, dy[i], live);
        var gDelta = 0.0;
        var gX = 0.0;
        for (var n = 0u; n < N; n++) {
          var previous = start[n];
          if (j > 0u) { previous = states[(j - 1u) * N + n]; }
          let bValue = bIn[row * N + n];
          let decay = exp(delta * rate[n]);
          let g = gh[n] + gy * cIn[row * N + n];
          contributions[half + lane * 2u * N + n] = select(0.0, g * delta * xValue, live);
          contributions[half + lane * 2u * N + N + n] = select(0.0, gy * states[j * N + n], live);
          let decayTerm = g * decay * previous;
          gDelta += rate[n] * decayTerm + g * xValue * bValue;
          gX += g * delta * bValue;
          gA[n] += delta * decayTerm;
          gh[n] = g * decay;
        }
        if (live) {
          dx[i] = gX;
          ddt[i] = gDelta;
        }
      }
      workgroupBarrier();
      if (inRange) {
        for (var column = lane; column < 2u * N; column += W) {
          var sum = 0.0;
          for (var r = 0u; r < W; r++) { sum += contributions[half + r * 2u * N + column]; }
          scratch[dims.dbcPartials + (row * dims.groups + group.x) * 2u * N + column] = sum;
        }
      }
    }
  }
  if (live) {
    for (var n = 0u; n < N; n++) {
      scratch[dims.dAPartials + carried + n] = gA[n];
      scratch[dims.carries + carried + n] = gh[n];
    }
  }
}`;
}

export function channelsScanForwardOnGpu(backend: tf.KernelBackend, [x, dt, a, b, c]: tf.TensorInfo[]): tf.TensorInfo {
  const context = new GpuKernelContext(backend);
  const shape = selectiveScanShape(x as tf.TensorInfo, a as tf.TensorInfo);
  const y = context.allocate([shape.batch, shape.length, shape.dInner]);
  context.run({
    key: `InterleaveSelectiveScan_N${shape.dState}`,
    shader: () => forwardShader(shape.dState),
    bindings: [x, dt, a, b, c, y] as tf.TensorInfo[],
    uniforms: [shape.length, shape.dInner],
    workgroups: [Math.ceil(shape.dInner / 64), shape.batch],
  });
  return y;
}

export function channelsScanBackwardOnGpu(
  backend: tf.KernelBackend,
  [x, dt, a, b, c, dy]: tf.TensorInfo[],
): tf.TensorInfo[] {
  const context = new GpuKernelContext(backend);
  const shape = selectiveScanShape(x as tf.TensorInfo, a as tf.TensorInfo);
  const { batch, length, dInner, dState } = shape;
  const layout = scratchLayout(shape);
  const scratch = context.allocate([layout.total]);
  // A goes into the scratch buffer so that the backward shader stays within 8 storage bindings.
  context.copy(a as tf.TensorInfo, 0, scratch, 0, dInner * dState);
  context.run({
    key: `InterleaveSelectiveScanCheckpoints_N${dState}`,
    shader: () => checkpointShader(dState),
    bindings: [x, dt, b, scratch] as tf.TensorInfo[],
    uniforms: [length, dInner, layout.chunks, layout.checkpoints],
    workgroups: [Math.ceil(dInner / 64), batch],
  });
  const dx = context.allocate([batch, length, dInner]);
  const ddt = context.allocate([batch, length, dInner]);
  for (let endChunk = layout.chunks; endChunk > 0; endChunk -= CHUNKS_PER_DISPATCH) {
    const firstChunk = Math.max(0, endChunk - CHUNKS_PER_DISPATCH);
    context.run({
      key: `InterleaveSelectiveScanGrad_N${dState}`,
      shader: () => backwardShader(dState),
      bindings: [x, dt, b, c, dy, scratch, dx, ddt] as tf.TensorInfo[],
      uniforms: [
        length,
        dInner,
        layout.chunks,
        layout.groups,
        layout.checkpoints,
        layout.dAPartials,
        layout.carries,
        layout.dbcPartials,
        firstChunk,
        endChunk,
      ],
      workgroups: [layout.groups, batch],
    });
  }
  const [da, db, dc] = reduceScanGradients(context, scratch, shape, layout);
  context.release(scratch);
  return [dx, ddt, da, db, dc];
}
