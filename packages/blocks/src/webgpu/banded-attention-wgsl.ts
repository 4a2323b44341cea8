import { GpuKernelContext, storageBindingsWgsl } from '@interleave/core';
import type * as tf from '@tensorflow/tfjs';
import { registerOnce } from '../scan/kernels/register-once.js';

/**
 * Causal sliding-window attention as three WGSL kernels for webgpu (docs/gpu.md, docs/design.md#attention).
 * Inputs as `causalAttention` takes them: queries [B, H, L, d] (RoPE applied and already scaled by
 * 1/√d, so a score is q·k), keys and values [B, KV, L, d]; query head h reads KV head ⌊h / (H/KV)⌋.
 * Query i sees the keys j with i − w < j ≤ i (`window` w; w = L is full causal attention).
 *
 * - Forward: a workgroup per (batch, head, block of 64 queries), a thread per query holding its q
 *   and its output accumulator in registers. The block's keys and values, (first − w, last], are
 *   staged through workgroup memory a tile at a time and every thread reads the same key (a
 *   broadcast). Softmax runs online (the running max m and Σ exp are rescaled when m grows), so
 *   no [L, w] or [L, L] scores exist. Writes the output [B, L, H·d] (heads concatenated, ready for
 *   the output projection) and the log-sum-exp m + log Σ exp [B, H, L] for the backward pass.
 * - Backward, queries: the same layout; each thread recomputes p_ij = exp(q_i·k_j − lse_i) and
 *   accumulates dq_i = Σ_j p_ij (dO_i·v_j − D_i) k_j, with D_i = dO_i·O_i, which it also writes.
 * - Backward, keys and values: a workgroup per (batch, KV head, block of 64 keys), a thread per
 *   key; queries, dO, lse and D of the queries that see the block, [first, last + w), are staged
 *   tile by tile for every query head of the KV head's group in turn, so
 *   dv_j = Σ_i p_ij dO_i and dk_j = Σ_i p_ij (dO_i·v_j − D_i) q_i sum over the group inside the
 *   thread. No atomics anywhere: every sum has a fixed order, so results repeat bit for bit.
 *
 * Per thread the loops are bounded by (64 + w)·d per head (forward and dq) and G·(64 + w)·d (dk,
 * dv), so a dispatch's running time grows with w, not L (Mesa's llvmpipe, the CI device, drops
 * the writes of very long dispatches).
 */
export const BANDED_ATTENTION_KERNEL = 'InterleaveBandedAttention';
export const BANDED_ATTENTION_QUERY_GRAD_KERNEL = 'InterleaveBandedAttentionQueryGrad';
export const BANDED_ATTENTION_KEY_VALUE_GRAD_KERNEL = 'InterleaveBandedAttentionKeyValueGrad';

/** Queries (or keys) per workgroup, one per thread. */
const BLOCK = 64;
/** Floats of workgroup memory a shader may use: WebGPU's guaranteed 16 KiB. */
const WORKGROUP_FLOATS = 4096;

/**
 * A head's d floats are held as ⌈d/4⌉ vec4s in registers and in workgroup memory, so a dot
 * product or an update of a row is d/4 vector operations and a staged row is read 16 bytes at
 * a time. The padding lanes (d not a multiple of 4) stay zero: private arrays are set to zero
 * first, workgroup memory starts zeroed and its padding is never written.
 */
const vec4s = (headDim: number) => Math.ceil(headDim / 4);

/**
 * Rows per staged tile: the key/value kernel stages T rows of q and dO plus T lse and D values,
 * T·(2·4⌈d/4⌉ + 2) floats; the other two stage T rows each of k and v, which is less.
 */
function tileRows(headDim: number): number {
  return Math.max(1, Math.min(BLOCK, Math.floor(WORKGROUP_FLOATS / (8 * vec4s(headDim) + 2))));
}

/** The constants and uniform struct every shader starts with; `window` is already min(w, L). */
function preamble(headDim: number, storageCount: number): string {
  return `struct Dims { length: u32, heads: u32, kvHeads: u32, window: u32 };
@group(0) @binding(${storageCount}) var<uniform> dims: Dims;
const D = ${headDim}u;
const D4 = ${vec4s(headDim)}u;
const T = ${tileRows(headDim)}u;`;
}

/** `target` (a private array<vec4<f32>, D4>) ← the d floats of `source` from `base`, padding zero. */
function loadRow(target: string, source: string, base: string): string {
  return `for (var c = 0u; c < D4; c++) { ${target}[c] = vec4<f32>(0.0); }
  for (var c = 0u; c < D; c++) { ${target}[c / 4u][c % 4u] = ${source}[${base} + c]; }`;
}

/** Stages `count` rows of d floats from `source` (row r at `rowStart(r)`) into a vec4 tile. */
function stageRows(tile: string, source: string, rowStart: (row: string) => string): string {
  return `for (var e = lane; e < count * D; e += ${BLOCK}u) {
        let r = e / D;
        let c = e % D;
        ${tile}[r * D4 + c / 4u][c % 4u] = ${source}[${rowStart('r')} + c];
      }`;
}

/**
 * The prologue shared by the forward and dq shaders: thread `lane` of workgroup (block, h, b)
 * owns query i, and the loop over its block's keys stages keys and values in tiles.
 */
function queryBlockPrologue(): string {
  return `  let seqLen = dims.length;
  let h = group.y;
  let b = group.z;
  let kvHead = h / (dims.heads / dims.kvHeads);
  let first = group.x * ${BLOCK}u;
  let last = min(first + ${BLOCK}u, seqLen) - 1u;
  let i = first + lane;
  let inRange = i < seqLen;
  let row = min(i, seqLen - 1u);
  let queryRow = ((b * dims.heads + h) * seqLen + row) * D;
  let keyBase = (b * dims.kvHeads + kvHead) * seqLen * D;
  // Keys of the block's queries: (first − w, last].
  let lowest = select(0u, first + 1u - dims.window, first + 1u > dims.window);`;
}

/** Stages keys [start, start + count) and their values; `count`, `start` uniform across the workgroup. */
const STAGE_KEYS = `    workgroupBarrier();
    ${stageRows('keyTile', 'keys', (r) => `keyBase + (start + ${r}) * D`)}
    ${stageRows('valueTile', 'values', (r) => `keyBase + (start + ${r}) * D`)}
    workgroupBarrier();`;

const KEY_VALUE_TILES = `var<workgroup> keyTile: array<vec4<f32>, T * D4>;
var<workgroup> valueTile: array<vec4<f32>, T * D4>;`;

function forwardShader(headDim: number): string {
  return `
${storageBindingsWgsl(['queries', 'keys', 'values'], ['outputs', 'logSumExp'])}
${preamble(headDim, 5)}
${KEY_VALUE_TILES}

@compute @workgroup_size(${BLOCK})
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
${queryBlockPrologue()}
  var q: array<vec4<f32>, D4>;
  var sum: array<vec4<f32>, D4>;
  ${loadRow('q', 'queries', 'queryRow')}
  for (var c = 0u; c < D4; c++) { sum[c] = vec4<f32>(0.0); }
  var runningMax = -3.0e38;
  var total = 0.0;
  for (var start = lowest; start <= last; start += T) {
    let count = min(T, last + 1u - start);
${STAGE_KEYS}
    for (var t = 0u; t < count; t++) {
      let j = start + t;
      if (!inRange || j > i || j + dims.window <= i) { continue; }
      var score = 0.0;
      for (var c = 0u; c < D4; c++) { score += dot(q[c], keyTile[t * D4 + c]); }
      if (score > runningMax) {
        // Rescale what was summed under the old maximum (exp of −huge is 0 on the first key).
        let shrink = exp(runningMax - score);
        total *= shrink;
        for (var c = 0u; c < D4; c++) { sum[c] *= shrink; }
        runningMax = score;
      }
      let p = exp(score - runningMax);
      total += p;
      for (var c = 0u; c < D4; c++) { sum[c] += p * valueTile[t * D4 + c]; }
    }
  }
  if (!inRange) { return; }
  let outputRow = ((b * seqLen + i) * dims.heads + h) * D;
  let norm = 1.0 / total;
  for (var c = 0u; c < D; c++) { outputs[outputRow + c] = sum[c / 4u][c % 4u] * norm; }
  logSumExp[(b * dims.heads + h) * seqLen + i] = runningMax + log(total);
}`;
}

function queryGradShader(headDim: number): string {
  return `
${storageBindingsWgsl(['queries', 'keys', 'values', 'outputs', 'logSumExp', 'outputGrad'], ['queryGrad', 'delta'])}
${preamble(headDim, 8)}
${KEY_VALUE_TILES}

@compute @workgroup_size(${BLOCK})
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
${queryBlockPrologue()}
  let outputRow = ((b * seqLen + row) * dims.heads + h) * D;
  var q: array<vec4<f32>, D4>;
  var dO: array<vec4<f32>, D4>;
  var o: array<vec4<f32>, D4>;
  var dq: array<vec4<f32>, D4>;
  ${loadRow('q', 'queries', 'queryRow')}
  ${loadRow('dO', 'outputGrad', 'outputRow')}
  ${loadRow('o', 'outputs', 'outputRow')}
  var dOdotO = 0.0;
  for (var c = 0u; c < D4; c++) { dOdotO += dot(dO[c], o[c]); dq[c] = vec4<f32>(0.0); }
  let lse = logSumExp[(b * dims.heads + h) * seqLen + row];
  for (var start = lowest; start <= last; start += T) {
    let count = min(T, last + 1u - start);
${STAGE_KEYS}
    for (var t = 0u; t < count; t++) {
      let j = start + t;
      if (!inRange || j > i || j + dims.window <= i) { continue; }
      var score = 0.0;
      var dp = 0.0;
      for (var c = 0u; c < D4; c++) {
        score += dot(q[c], keyTile[t * D4 + c]);
        dp += dot(dO[c], valueTile[t * D4 + c]);
      }
      let ds = exp(score - lse) * (dp - dOdotO);
      for (var c = 0u; c < D4; c++) { dq[c] += ds * keyTile[t * D4 + c]; }
    }
  }
  if (!inRange) { return; }
  for (var c = 0u; c < D; c++) { queryGrad[queryRow + c] = dq[c / 4u][c % 4u]; }
  delta[(b * dims.heads + h) * seqLen + i] = dOdotO;
}`;
}

function keyValueGradShader(headDim: number): string {
  return `
${storageBindingsWgsl(['queries', 'keys', 'values', 'logSumExp', 'delta', 'outputGrad'], ['keyGrad', 'valueGrad'])}
${preamble(headDim, 8)}
var<workgroup> queryTile: array<vec4<f32>, T * D4>;
var<workgroup> outputGradTile: array<vec4<f32>, T * D4>;
var<workgroup> lseTile: array<f32, T>;
var<workgroup> deltaTile: array<f32, T>;

@compute @workgroup_size(${BLOCK})
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let seqLen = dims.length;
  let kvHead = group.y;
  let b = group.z;
  let groupSize = dims.heads / dims.kvHeads;
  let first = group.x * ${BLOCK}u;
  let last = min(first + ${BLOCK}u, seqLen) - 1u;
  let j = first + lane;
  let inRange = j < seqLen;
  let keyRow = ((b * dims.kvHeads + kvHead) * seqLen + min(j, seqLen - 1u)) * D;
  // Queries that see the block's keys: [first, last + w).
  let lastQuery = min(last + dims.window - 1u, seqLen - 1u);
  var k: array<vec4<f32>, D4>;
  var v: array<vec4<f32>, D4>;
  var dk: array<vec4<f32>, D4>;
  var dv: array<vec4<f32>, D4>;
  ${loadRow('k', 'keys', 'keyRow')}
  ${loadRow('v', 'values', 'keyRow')}
  for (var c = 0u; c < D4; c++) { dk[c] = vec4<f32>(0.0); dv[c] = vec4<f32>(0.0); }
  for (var member = 0u; member < groupSize; member++) {
    let h = kvHead * groupSize + member;
    let headRows = (b * dims.heads + h) * seqLen;
    for (var start = first; start <= lastQuery; start += T) {
      let count = min(T, lastQuery + 1u - start);
      workgroupBarrier();
      ${stageRows('queryTile', 'queries', (r) => `(headRows + start + ${r}) * D`)}
      ${stageRows('outputGradTile', 'outputGrad', (r) => `((b * seqLen + start + ${r}) * dims.heads + h) * D`)}
      if (lane < count) {
        lseTile[lane] = logSumExp[headRows + start + lane];
        deltaTile[lane] = delta[headRows + start + lane];
      }
      workgroupBarrier();
      for (var t = 0u; t < count; t++) {
        let i = start + t;
        if (!inRange || i < j || i >= j + dims.window) { continue; }
        var score = 0.0;
        var dp = 0.0;
        for (var c = 0u; c < D4; c++) {
          score += dot(queryTile[t * D4 + c], k[c]);
          dp += dot(outputGradTile[t * D4 + c], v[c]);
        }
        let p = exp(score - lseTile[t]);
        let ds = p * (dp - deltaTile[t]);
        for (var c = 0u; c < D4; c++) {
          dv[c] += p * outputGradTile[t * D4 + c];
          dk[c] += ds * queryTile[t * D4 + c];
        }
      }
    }
  }
  if (!inRange) { return; }
  for (var c = 0u; c < D; c++) {
    keyGrad[keyRow + c] = dk[c / 4u][c % 4u];
    valueGrad[keyRow + c] = dv[c / 4u][c % 4u];
  }
}`;
}

interface AttentionDims {
  batch: number;
  heads: number;
  kvHeads: number;
  length: number;
  headDim: number;
}

function dimsOf(queries: tf.TensorInfo, keys: tf.TensorInfo): AttentionDims {
  const [batch, heads, length, headDim] = queries.shape as [number, number, number, number];
  return { batch, heads, kvHeads: keys.shape[1] as number, length, headDim };
}

function uniforms({ heads, kvHeads, length }: AttentionDims, window: number): number[] {
  return [length, heads, kvHeads, Math.min(window, length)];
}

function windowOf(attrs: unknown): number {
  return (attrs as { window: number }).window;
}

registerOnce(BANDED_ATTENTION_KERNEL, 'webgpu', ({ inputs, backend, attrs }) => {
  const { queries, keys, values } = inputs as Record<'queries' | 'keys' | 'values', tf.TensorInfo>;
  const context = new GpuKernelContext(backend as tf.KernelBackend);
  const dims = dimsOf(queries, keys);
  const { batch, heads, length, headDim } = dims;
  const outputs = context.allocate([batch, length, heads * headDim]);
  const logSumExp = context.allocate([batch, heads, length]);
  context.run({
    key: `${BANDED_ATTENTION_KERNEL}/${headDim}`,
    shader: () => forwardShader(headDim),
    bindings: [queries, keys, values, outputs, logSumExp],
    uniforms: uniforms(dims, windowOf(attrs)),
    workgroups: [Math.ceil(length / BLOCK), heads, batch],
  });
  return [outputs, logSumExp];
});

registerOnce(BANDED_ATTENTION_QUERY_GRAD_KERNEL, 'webgpu', ({ inputs, backend, attrs }) => {
  const { queries, keys, values, outputs, logSumExp, outputGrad } = inputs as Record<string, tf.TensorInfo>;
  const context = new GpuKernelContext(backend as tf.KernelBackend);
  const dims = dimsOf(queries as tf.TensorInfo, keys as tf.TensorInfo);
  const { batch, heads, length, headDim } = dims;
  const queryGrad = context.allocate([batch, heads, length, headDim]);
  const delta = context.allocate([batch, heads, length]);
  context.run({
    key: `${BANDED_ATTENTION_QUERY_GRAD_KERNEL}/${headDim}`,
    shader: () => queryGradShader(headDim),
    bindings: [queries, keys, values, outputs, logSumExp, outputGrad, queryGrad, delta] as tf.TensorInfo[],
    uniforms: uniforms(dims, windowOf(attrs)),
    workgroups: [Math.ceil(length / BLOCK), heads, batch],
  });
  return [queryGrad, delta];
});

registerOnce(BANDED_ATTENTION_KEY_VALUE_GRAD_KERNEL, 'webgpu', ({ inputs, backend, attrs }) => {
  const { queries, keys, values, logSumExp, delta, outputGrad } = inputs as Record<string, tf.TensorInfo>;
  const context = new GpuKernelContext(backend as tf.KernelBackend);
  const dims = dimsOf(queries as tf.TensorInfo, keys as tf.TensorInfo);
  const { batch, kvHeads, length, headDim } = dims;
  const keyGrad = context.allocate([batch, kvHeads, length, headDim]);
  const valueGrad = context.allocate([batch, kvHeads, length, headDim]);
  context.run({
    key: `${BANDED_ATTENTION_KEY_VALUE_GRAD_KERNEL}/${headDim}`,
    shader: () => keyValueGradShader(headDim),
    bindings: [queries, keys, values, logSumExp, delta, outputGrad, keyGrad, valueGrad] as tf.TensorInfo[],
    uniforms: uniforms(dims, windowOf(attrs)),
    workgroups: [Math.ceil(length / BLOCK), kvHeads, batch],
  });
  return [keyGrad, valueGrad];
});
