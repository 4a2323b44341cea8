import { FLAT_INDEX_WGSL, flatWorkgroups, type GpuKernelContext } from '@interleave/core';
import type * as tf from '@tensorflow/tfjs';
import type { SelectiveScanShape } from './selective-scan-shape.js';

/** What the two WGSL selective scans (lanes, channels) share: bindings and the gradient reductions. */

/** WGSL storage bindings 0…k−1: `names` read-only, then `writable` read-write. */
export function storageBindings(names: string[], writable: string[]): string {
  return [...names, ...writable]
    .map((name, index) => {
      const access = writable.includes(name) ? 'read_write' : 'read';
      return `@group(0) @binding(${index}) var<storage, ${access}> ${name}: array<f32>;`;
    })
    .join('\n');
}

/** Where a backward pass left its partial sums in its scratch buffer (float offsets). */
export interface GradientPartials {
  /** Workgroups over the channels, each with its own dB, dC partial per (row, state). */
  groups: number;
  /** dA partials [B, D·N]. */
  dAPartials: number;
  /** dB, dC partials [B·L, groups, 2N]. */
  dbcPartials: number;
}

/**
 * dA, dB and dC from a backward pass's partials: each a sum in a fixed order (sequences for dA,
 * workgroups for dB and dC), so the gradients are bit-identical run to run.
 */
export function reduceScanGradients(
  context: GpuKernelContext,
  scratch: tf.TensorInfo,
  { batch, length, dInner, dState }: SelectiveScanShape,
  partials: GradientPartials,
): [tf.TensorInfo, tf.TensorInfo, tf.TensorInfo] {
  const db = context.allocate([batch, length, dState]);
  const dc = context.allocate([batch, length, dState]);
  const bcCount = batch * length * dState;
  context.run({
    key: 'InterleaveSelectiveScanReduceBC',
    shader: reduceBcShader,
    bindings: [scratch, db, dc],
    uniforms: [bcCount, dState, partials.groups, partials.dbcPartials],
    workgroups: flatWorkgroups(bcCount, context.limits),
  });
  const da = context.allocate([dInner, dState]);
  context.run({
    key: 'InterleaveSelectiveScanReduceA',
    shader: reduceAShader,
    bindings: [scratch, da],
    uniforms: [dInner * dState, batch, partials.dAPartials],
    workgroups: flatWorkgroups(dInner * dState, context.limits),
  });
  return [da, db, dc];
}

/** dB, dC [rows, N] from the per-workgroup partials [rows, groups, 2N], added in group order. */
function reduceBcShader(): string {
  return `
${storageBindings(['scratch'], ['db', 'dc'])}
struct Dims { count: u32, dState: u32, groups: u32, dbcPartials: u32 };
@group(0) @binding(3) var<uniform> dims: Dims;
${FLAT_INDEX_WGSL}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let index = flatIndex(id, groups);
  if (index >= dims.count) { return; }
  let row = index / dims.dState;
  let n = index % dims.dState;
  var sumB = 0.0;
  var sumC = 0.0;
  for (var g = 0u; g < dims.groups; g++) {
    let base = dims.dbcPartials + (row * dims.groups + g) * 2u * dims.dState + n;
    sumB += scratch[base];
    sumC += scratch[base + dims.dState];
  }
  db[index] = sumB;
  dc[index] = sumC;
}`;
}

/** dA [D·N] = Σ over sequences of the partials [B, D·N], in sequence order. */
function reduceAShader(): string {
  return `
${storageBindings(['scratch'], ['da'])}
struct Dims { count: u32, batch: u32, dAPartials: u32 };
@group(0) @binding(2) var<uniform> dims: Dims;
${FLAT_INDEX_WGSL}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let index = flatIndex(id, groups);
  if (index >= dims.count) { return; }
  var sum = 0.0;
  for (var b = 0u; b < dims.batch; b++) { sum += scratch[dims.dAPartials + b * dims.count + index]; }
  da[index] = sum;
}`;
}
