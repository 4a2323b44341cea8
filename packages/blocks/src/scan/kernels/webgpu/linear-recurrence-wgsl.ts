import { GpuKernelContext } from '@interleave/core';
import type * as tf from '@tensorflow/tfjs';

/**
 * WGSL for h_t = a_t ⊙ h_{t−1} + b_t over axis 1 of [B, L, F] (RG-LRU's recurrence): one thread
 * per (sequence, feature), walking time with the carry in a register; neighbouring threads read
 * neighbouring features, so every step's loads are coalesced. Backward, in reverse time,
 *   g_t = dy_t + a_{t+1} g_{t+1},   ∂b_t = g_t,   ∂a_t = g_t h_{t−1}.
 */

const WORKGROUP = 64;

function forwardShader(): string {
  return `
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> h: array<f32>;
struct Dims { length: u32, features: u32 };
@group(0) @binding(3) var<uniform> dims: Dims;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let f = id.x;
  if (f >= dims.features) { return; }
  var carry = 0.0;
  let start = id.y * dims.length * dims.features + f;
  for (var t = 0u; t < dims.length; t++) {
    let i = start + t * dims.features;
    carry = a[i] * carry + b[i];
    h[i] = carry;
  }
}`;
}

function backwardShader(): string {
  return `
@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> h: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> da: array<f32>;
@group(0) @binding(4) var<storage, read_write> db: array<f32>;
struct Dims { length: u32, features: u32 };
@group(0) @binding(5) var<uniform> dims: Dims;

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let f = id.x;
  if (f >= dims.features) { return; }
  var fromFuture = 0.0;
  let start = id.y * dims.length * dims.features + f;
  for (var k = dims.length; k > 0u; k--) {
    let t = k - 1u;
    let i = start + t * dims.features;
    let g = dy[i] + fromFuture;
    db[i] = g;
    var previous = 0.0;
    if (t > 0u) { previous = h[i - dims.features]; }
    da[i] = g * previous;
    fromFuture = g * a[i];
  }
}`;
}

function dimsOf(info: tf.TensorInfo) {
  const [batch, length, features] = info.shape as [number, number, number];
  return { batch, length, features };
}

export function linearRecurrenceForwardOnGpu(backend: tf.KernelBackend, [a, b]: tf.TensorInfo[]): tf.TensorInfo {
  const context = new GpuKernelContext(backend);
  const { batch, length, features } = dimsOf(a as tf.TensorInfo);
  const h = context.allocate([batch, length, features]);
  context.run({
    key: 'InterleaveLinearRecurrence',
    shader: forwardShader,
    bindings: [a, b, h] as tf.TensorInfo[],
    uniforms: [length, features],
    workgroups: [Math.ceil(features / WORKGROUP), batch],
  });
  return h;
}

export function linearRecurrenceBackwardOnGpu(backend: tf.KernelBackend, [a, h, dy]: tf.TensorInfo[]): tf.TensorInfo[] {
  const context = new GpuKernelContext(backend);
  const { batch, length, features } = dimsOf(a as tf.TensorInfo);
  const da = context.allocate([batch, length, features]);
  const db = context.allocate([batch, length, features]);
  context.run({
    key: 'InterleaveLinearRecurrenceGrad',
    shader: backwardShader,
    bindings: [a, h, dy, da, db] as tf.TensorInfo[],
    uniforms: [length, features],
    workgroups: [Math.ceil(features / WORKGROUP), batch],
  });
  return [da, db];
}
