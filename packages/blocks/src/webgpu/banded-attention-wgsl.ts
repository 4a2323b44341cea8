import { GpuKernelContext, storageBindingsWgsl } from '@interleave/core';
import type * as tf from '@tensorflow/tfjs';
import { registerOnce } from '../scan/kernels/register-once.js';

/**
 * Causal sliding-window attention as three WGSL kernels for webgpu (docs/gpu.md, docs/design.md#attention).
 * Inputs as `causalAttention` takes them: queries [B, H, L, d] (RoPE applied and already scaled by
 * 1/√d, so a score is q·k), keys and values [B, KV, L, d]; query head h reads KV head ⌊h / (H/KV)⌋.
 * Query i sees the keys j with i − w < j ≤ i (`window` w; w = L is full causal attention).
 *
 * Every kernel gives a workgroup of 64 threads a block of 16 rows (queries, or keys for the key
 * and value gradients) and splits the other side (keys, or queries) four ways: thread (row r,
 * split s) takes the staged rows t ≡ s (mod 4). Four threads a row rather than one gives short
 * sequences enough threads (Zoology's MQAR model: 512 sequences of 64 tokens, one head, is 2,048
 * workgroups instead of 512) and a quarter of the serial chain per thread; at the end the three
 * other splits hand their partial sums to split 0 through the (then idle) tile memory, in a fixed
 * order.
 *
 * - Forward: each thread holds its query q and an output accumulator in registers. The block's
 *   keys and values, (first − w, last], are staged through workgroup memory a tile at a time and
 *   the threads of a split read the same key (a broadcast). Softmax runs online (the running max m
 *   and Σ exp are rescaled when m grows), so no [L, w] or [L, L] scores exist; the four splits'
 *   (m, Σ exp, Σ exp·v) merge as m = max m_s, Σ = Σ_s Σ_s·exp(m_s − m). Writes the output
 *   [B, L, H·d] (heads concatenated, ready for the output projection) and the log-sum-exp
 *   m + log Σ exp [B, H, L] for the backward pass.
 * - Backward, queries: the same layout; each thread recomputes p_ij = exp(q_i·k_j − lse_i) and
 *   accumulates dq_i = Σ_j p_ij (dO_i·v_j − D_i) k_j over its keys, with D_i = dO_i·O_i; the
 *   splits' partial dq add up in split order.
 * - Backward, keys and values: a workgroup per (batch, KV head, block of 16 keys); queries, dO,
 *   lse and D of the queries that see the block, [first, last + w), are staged tile by tile for
 *   every query head of the KV head's group in turn, so dv_j = Σ_i p_ij dO_i and
 *   dk_j = Σ_i p_ij (dO_i·v_j − D_i) q_i sum over the group inside the thread, then over the
 *   splits. No atomics anywhere: every sum has a fixed order, so results repeat bit for bit.
 *
 * Per thread the loops are bounded by (16 + w)·d/4 per head (forward and dq) and
 * G·(16 + w)·d/4 (dk, dv), so a dispatch's running time grows with w, not L (Mesa's llvmpipe,
 * the CI device, drops the writes of very long dispatches).
 */
export const BANDED_ATTENTION_KERNEL = 'InterleaveBandedAttention';
export const BANDED_ATTENTION_QUERY_GRAD_KERNEL = 'InterleaveBandedAttentionQueryGrad';
export const BANDED_ATTENTION_KEY_VALUE_GRAD_KERNEL = 'InterleaveBandedAttentionKeyValueGrad';

/** Rows (queries, or keys for the key/value gradients) per workgroup. */
const ROWS = 16;
/** Threads per row, each taking every SPLIT-th staged row of the other side. */
const SPLIT = 4;
const THREADS = ROWS * SPLIT;
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
  return Math.max(1, Math.min(64, Math.floor(WORKGROUP_FLOATS / (8 * vec4s(headDim) + 2))));
}

/**
 * Rows whose partial sums are merged per round: splits 1..3 each write `vec4sPerPartial` vec4s
 * a row into the two tiles (2·T·⌈d/4⌉ vec4s), so R rows take 3·R·vec4sPerPartial of them.
 */
function mergeRows(headDim: number, vec4sPerPartial: number): number {
  const tileVec4s = 2 * tileRows(headDim) * vec4s(headDim);
  return Math.max(1, Math.min(ROWS, Math.floor(tileVec4s / ((SPLIT - 1) * vec4sPerPartial))));
}

/**
 * The constants and uniform struct every shader starts with; `window` is already min(w, L).
 * `tiles` holds two staged tiles of T rows (k and v, or q and dO), the second at SECOND.
 */
function preamble(headDim: number, storageCount: number, vec4sPerPartial: number): string {
  return `struct Dims { length: u32, heads: u32, kvHeads: u32, window: u32 };
@group(0) @binding(${storageCount}) var<uniform> dims: Dims;
const D = ${headDim}u;
const D4 = ${vec4s(headDim)}u;
const T = ${tileRows(headDim)}u;
const ROWS = ${ROWS}u;
const SPLIT = ${SPLIT}u;
const MERGE_ROWS = ${mergeRows(headDim, vec4sPerPartial)}u;
const PARTIAL = ${vec4sPerPartial}u;
const SECOND = T * D4;
var<workgroup> tiles: array<vec4<f32>, 2u * T * D4>;`;
}

/** `target` (a private array<vec4<f32>, D4>) ← the d floats of `source` from `base`, padding zero. */
function loadRow(target: string, source: string, base: string): string {
  return `for (var c = 0u; c < D4; c++) { ${target}[c] = vec4<f32>(0.0); }
  for (var c = 0u; c < D; c++) { ${target}[c / 4u][c % 4u] = ${source}[${base} + c]; }`;
}

/** Stages `count` rows of d floats from `source` (row r at `rowStart(r)`) into tiles from `offset`. */
function stageRows(offset: string, source: string, rowStart: (row: string) => string): string {
  return `for (var e = lane; e < count * D; e += ${THREADS}u) {
        let r = e / D;
        let c = e % D;
        tiles[${offset} + r * D4 + c / 4u][c % 4u] = ${source}[${rowStart('r')} + c];
      }`;
}

/**
 * Merging the splits' partial sums, MERGE_ROWS rows a round: splits 1..3 of a row write theirs
 * (`write`, given `slot`, the first of its PARTIAL vec4s) and split 0 reads them in split order
 * (`read`, given `slot` of split `p`). Every thread passes every barrier (no early return above).
 */
function mergeSplits(write: string, read: string): string {
  return `for (var mergeStart = 0u; mergeStart < ROWS; mergeStart += MERGE_ROWS) {
    workgroupBarrier();
    let merging = row >= mergeStart && row < mergeStart + MERGE_ROWS;
    if (merging && split > 0u) {
      let slot = ((split - 1u) * MERGE_ROWS + row - mergeStart) * PARTIAL;
      ${write}
    }
    workgroupBarrier();
    if (merging && split == 0u) {
      for (var p = 1u; p < SPLIT; p++) {
        let slot = ((p - 1u) * MERGE_ROWS + row - mergeStart) * PARTIAL;
        ${read}
      }
    }
  }`;
}

/**
 * The prologue shared by the forward and dq shaders: thread `lane` of workgroup (block, h, b)
 * owns query i with split `split`; the loop over its block's keys stages keys and values in tiles.
 */
function queryBlockPrologue(): string {
  return `  let seqLen = dims.length;
  let h = group.y;
  let b = group.z;
  let kvHead = h / (dims.heads / dims.kvHeads);
  let row = lane % ROWS;
  let split = lane / ROWS;
  let first = group.x * ROWS;
  let last = min(first + ROWS, seqLen) - 1u;
  let i = first + row;
  let inRange = i < seqLen;
  let clamped = min(i, seqLen - 1u);
  let queryRow = ((b * dims.heads + h) * seqLen + clamped) * D;
  let keyBase = (b * dims.kvHeads + kvHead) * seqLen * D;
  // Keys of the block's queries: (first − w, last].
  let lowest = select(0u, first + 1u - dims.window, first + 1u > dims.window);`;
}

/** Stages keys [start, start + count) and their values; `count`, `start` uniform across the workgroup. */
const STAGE_KEYS = `    workgroupBarrier();
    ${stageRows('0u', 'keys', (r) => `keyBase + (start + ${r}) * D`)}
    ${stageRows('SECOND', 'values', (r) => `keyBase + (start + ${r}) * D`)}
    workgroupBarrier();`;

function forwardShader(headDim: number): string {
  return `
${storageBindingsWgsl(['queries', 'keys', 'values'], ['outputs', 'logSumExp'])}
${preamble(headDim, 5, vec4s(headDim) + 1)}

@compute @workgroup_size(${THREADS})
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
    for (var t = split; t < count; t += SPLIT) {
      let j = start + t;
      if (!inRange || j > i || j + dims.window <= i) { continue; }
      var score = 0.0;
      for (var c = 0u; c < D4; c++) { score += dot(q[c], tiles[t * D4 + c]); }
      if (score > runningMax) {
        // Rescale what was summed under the old maximum (exp of −huge is 0 on the first key).
        let shrink = exp(runningMax - score);
        total *= shrink;
        for (var c = 0u; c < D4; c++) { sum[c] *= shrink; }
        runningMax = score;
      }
      let p = exp(score - runningMax);
      total += p;
      for (var c = 0u; c < D4; c++) { sum[c] += p * tiles[SECOND + t * D4 + c]; }
    }
  }
  // A split that saw no key keeps max −3e38 and Σ 0, and adds nothing below.
  ${mergeSplits(
    `tiles[slot] = vec4<f32>(runningMax, total, 0.0, 0.0);
      for (var c = 0u; c < D4; c++) { tiles[slot + 1u + c] = sum[c]; }`,
    `let otherMax = tiles[slot].x;
        let merged = max(runningMax, otherMax);
        let mine = exp(runningMax - merged);
        let theirs = exp(otherMax - merged);
        total = total * mine + tiles[slot].y * theirs;
        for (var c = 0u; c < D4; c++) { sum[c] = sum[c] * mine + tiles[slot + 1u + c] * theirs; }
        runningMax = merged;`,
  )}
  if (!inRange || split != 0u) { return; }
  let outputRow = ((b * seqLen + i) * dims.heads + h) * D;
  let norm = 1.0 / total;
  for (var c = 0u; c < D; c++) { outputs[outputRow + c] = sum[c / 4u][c % 4u] * norm; }
  logSumExp[(b * dims.heads + h) * seqLen + i] = runningMax + log(total);
}`;
}

function queryGradShader(headDim: number): string {
  return `
${storageBindingsWgsl(['queries', 'keys', 'values', 'outputs', 'logSumExp', 'outputGrad'], ['queryGrad', 'delta'])}
${preamble(headDim, 8, vec4s(headDim))}

@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
${queryBlockPrologue()}
  let outputRow = ((b * seqLen + clamped) * dims.heads + h) * D;
  var q: array<vec4<f32>, D4>;
  var dO: array<vec4<f32>, D4>;
  var o: array<vec4<f32>, D4>;
  var dq: array<vec4<f32>, D4>;
  ${loadRow('q', 'queries', 'queryRow')}
  ${loadRow('dO', 'outputGrad', 'outputRow')}
  ${loadRow('o', 'outputs', 'outputRow')}
  var dOdotO = 0.0;
  for (var c = 0u; c < D4; c++) { dOdotO += dot(dO[c], o[c]); dq[c] = vec4<f32>(0.0); }
  let lse = logSumExp[(b * dims.heads + h) * seqLen + clamped];
  for (var start = lowest; start <= last; start += T) {
    let count = min(T, last + 1u - start);
${STAGE_KEYS}
    for (var t = split; t < count; t += SPLIT) {
      let j = start + t;
      if (!inRange || j > i || j + dims.window <= i) { continue; }
      var score = 0.0;
      var dp = 0.0;
      for (var c = 0u; c < D4; c++) {
        score += dot(q[c], tiles[t * D4 + c]);
        dp += dot(dO[c], tiles[SECOND + t * D4 + c]);
      }
      let ds = exp(score - lse) * (dp - dOdotO);
      for (var c = 0u; c < D4; c++) { dq[c] += ds * tiles[t * D4 + c]; }
    }
  }
  ${mergeSplits(
    'for (var c = 0u; c < D4; c++) { tiles[slot + c] = dq[c]; }',
    'for (var c = 0u; c < D4; c++) { dq[c] += tiles[slot + c]; }',
  )}
  if (!inRange || split != 0u) { return; }
  for (var c = 0u; c < D; c++) { queryGrad[queryRow + c] = dq[c / 4u][c % 4u]; }
  delta[(b * dims.heads + h) * seqLen + i] = dOdotO;
}`;
}

function keyValueGradShader(headDim: number): string {
  return `
${storageBindingsWgsl(['queries', 'keys', 'values', 'logSumExp', 'delta', 'outputGrad'], ['keyGrad', 'valueGrad'])}
${preamble(headDim, 8, 2 * vec4s(headDim))}
var<workgroup> lseTile: array<f32, T>;
var<workgroup> deltaTile: array<f32, T>;

@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let seqLen = dims.length;
  let kvHead = group.y;
  let b = group.z;
  let groupSize = dims.heads / dims.kvHeads;
  let row = lane % ROWS;
  let split = lane / ROWS;
  let first = group.x * ROWS;
  let last = min(first + ROWS, seqLen) - 1u;
  let j = first + row;
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
      ${stageRows('0u', 'queries', (r) => `(headRows + start + ${r}) * D`)}
      ${stageRows('SECOND', 'outputGrad', (r) => `((b * seqLen + start + ${r}) * dims.heads + h) * D`)}
      if (lane < count) {
        lseTile[lane] = logSumExp[headRows + start + lane];
        deltaTile[lane] = delta[headRows + start + lane];
      }
      workgroupBarrier();
      for (var t = split; t < count; t += SPLIT) {
        let i = start + t;
        if (!inRange || i < j || i >= j + dims.window) { continue; }
        var score = 0.0;
        var dp = 0.0;
        for (var c = 0u; c < D4; c++) {
          score += dot(tiles[t * D4 + c], k[c]);
          dp += dot(tiles[SECOND + t * D4 + c], v[c]);
        }
        let p = exp(score - lseTile[t]);
        let ds = p * (dp - deltaTile[t]);
        for (var c = 0u; c < D4; c++) {
          dv[c] += p * tiles[SECOND + t * D4 + c];
          dk[c] += ds * tiles[t * D4 + c];
        }
      }
    }
  }
  ${mergeSplits(
    `for (var c = 0u; c < D4; c++) { tiles[slot + c] = dk[c]; tiles[slot + D4 + c] = dv[c]; }`,
    `for (var c = 0u; c < D4; c++) { dk[c] += tiles[slot + c]; dv[c] += tiles[slot + D4 + c]; }`,
  )}
  if (!inRange || split != 0u) { return; }
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
    workgroups: [Math.ceil(length / ROWS), heads, batch],
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
    workgroups: [Math.ceil(length / ROWS), heads, batch],
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
    workgroups: [Math.ceil(length / ROWS), kvHeads, batch],
  });
  return [keyGrad, valueGrad];
});
