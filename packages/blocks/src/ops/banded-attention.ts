import { matmul } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { defaultAttentionImplementation, fusedCausalAttention } from './fused-attention.js';

/**
 * The core of causal multi-head attention (docs/design.md#attention), after the projections and RoPE: query t
 * attends to keys in (t − window, t], or to every earlier key when `window` is null.
 *
 * Shapes: queries [B, H, L, d] (RoPE applied, already scaled by 1/√d), keys and values
 * [B, KV, L, d] with KV dividing H; query head h reads KV head ⌊h / (H/KV)⌋. The result is
 * [B, L, H·d], heads concatenated in order, ready for the output projection.
 *
 * Two formulations with the same result:
 * - `dense`: one [L, L] score matrix per head with an additive mask, O(L²) time and memory;
 * - `banded`: the sequence is cut into blocks of `window` positions and each query block looks
 *   only at its own block and the one before, so time and memory are O(L·w).
 * `auto` picks by the cost model in `prefersBanded`, except where the backend has the fused
 * kernels (webgpu): there `auto` runs them (`fused`, ops/fused-attention.ts) for sliding windows
 * and for full attention over more than DENSE_ATTENTION_MAX_LENGTH positions, where they are as
 * fast and hold O(L·d) memory; shorter full attention is faster as the dense tf-op form.
 * `INTERLEAVE_ATTENTION=fused|ops` forces one.
 */
export type AttentionPath = 'auto' | 'dense' | 'banded' | 'fused';

export interface AttentionHeads {
  readonly queries: tf.Tensor4D;
  readonly keys: tf.Tensor4D;
  readonly values: tf.Tensor4D;
}

const MASKED = -1e9;

/**
 * Banded attention computes Lp·2w scores per head (Lp = L rounded up to a multiple of w) where
 * dense computes L², and it pays for padding, block reshapes and a copy of the keys. Measured
 * forward+backward on tfjs-wasm (2 shared cores, B = 32, d_model 64, 2 heads; best of 7):
 *   L²/(Lp·2w):  0.44 (L 64, w 48, the demo)  banded 0.5× dense's speed
 *                1.0  (L 96/48, 32/16, 16/8)  0.84–0.92×
 *                1.19 (L 128, w 48)           1.05×
 *                1.5  (L 144/48, 48/16)       1.06–1.26×
 *                2 → 4 → 16                   1.1–1.6× → 1.7× → 1.9–2.3×; L 512: 10–16×
 * so below a ratio of 1.5 the dense form is kept (the demo shape runs exactly as before).
 */
const BANDED_MIN_RATIO = 1.5;

/** Whether `auto` uses the banded form for this length and window. */
export function prefersBanded(length: number, window: number | null): boolean {
  if (window === null || window >= length) return false;
  const padded = Math.ceil(length / window) * window;
  return length * length >= BANDED_MIN_RATIO * padded * 2 * window;
}

/** `banded` with a window ≥ L (or none) is the dense form: there is no band to exploit. */
export function causalAttention(
  heads: AttentionHeads,
  window: number | null,
  path: AttentionPath = 'auto',
): tf.Tensor3D {
  const [batch, headCount, length] = heads.queries.shape;
  if (
    path === 'fused' ||
    (path === 'auto' && defaultAttentionImplementation(length, window, batch * headCount) === 'fused')
  ) {
    return fusedCausalAttention(heads, window);
  }
  const banded =
    path === 'banded' ? window !== null && window < length : path === 'auto' && prefersBanded(length, window);
  return banded ? bandedAttention(heads, window as number) : denseAttention(heads, window);
}

/** The O(L²) form: every score, masked outside the window. */
export function denseAttention({ queries, keys, values }: AttentionHeads, window: number | null): tf.Tensor3D {
  return tf.tidy(() => {
    const [batch, heads, length, headDim] = queries.shape;
    const kvHeads = keys.shape[1];
    const group = heads / kvHeads;
    // Query heads sharing a KV head are stacked along time so one matmul serves the group.
    const q = queries.reshape([batch, kvHeads, group * length, headDim]);
    const scores = matmul(q, keys, false, true).reshape([batch, kvHeads, group, length, length]);
    const weights = tf.softmax(scores.add(denseMask(length, window ?? length)));
    const mixed = matmul(weights.reshape([batch, kvHeads, group * length, length]), values);
    // One head: [B, 1, L, d] is already [B, L, d] in memory (a reshape, no copy).
    const perToken = heads === 1 ? mixed : mixed.reshape([batch, heads, length, headDim]).transpose([0, 2, 1, 3]);
    return perToken.reshape([batch, length, heads * headDim]) as tf.Tensor3D;
  });
}

/** Additive mask [L, L]: 0 where key s is visible from query t, −1e9 elsewhere. */
function denseMask(length: number, window: number): tf.Tensor2D {
  const mask = new Float32Array(length * length).fill(MASKED);
  for (let t = 0; t < length; t++) {
    for (let s = Math.max(0, t - window + 1); s <= t; s++) mask[t * length + s] = 0;
  }
  return tf.tensor2d(mask, [length, length]);
}

/**
 * The O(L·w) form. With blocks of w positions, the keys in (t − w, t] all lie in t's block or
 * the one before, so block i's queries [G·w, d] (the G query heads of a KV head stacked) meet
 * 2w keys: one batched matmul over B·KV·n blocks. Padding: w zero positions in front of the
 * keys stand for block 0's missing predecessor (masked out), and the tail is padded to a whole
 * block (those queries are dropped). Only pads, slices, concats, reshapes, transposes, matmuls
 * and a softmax: every kernel and gradient exists on cpu and wasm. Pads, slices and concats
 * are done on tensors of rank ≤ 3 with contiguous rows, because tfjs-wasm slices rank ≥ 5
 * element by element in JavaScript (~100× slower) — and a concat's gradient is a slice.
 */
export function bandedAttention({ queries, keys, values }: AttentionHeads, window: number): tf.Tensor3D {
  return tf.tidy(() => {
    const [batch, heads, length, headDim] = queries.shape;
    const kvHeads = keys.shape[1];
    const group = heads / kvHeads;
    const blockSize = window;
    const blocks = Math.ceil(length / blockSize);
    const padded = blocks * blockSize;
    const rows = batch * kvHeads * blocks;

    // [B, H, L, d] → [B·KV·n, G·w, d]: the group's heads stacked within each block.
    const q = padTime(queries, 0, padded - length)
      .reshape([batch * kvHeads, group, blocks, blockSize * headDim])
      .transpose([0, 2, 1, 3])
      .reshape([rows, group * blockSize, headDim]);
    const k = twoBlockWindows(keys, blockSize, blocks);
    const v = twoBlockWindows(values, blockSize, blocks);

    const scores = matmul(q, k, false, true).reshape([batch * kvHeads, blocks, group, blockSize, 2 * blockSize]);
    const weights = tf.softmax(scores.add(bandMask(blocks, blockSize, window)));
    // [B·KV·n, G·w, d] → [B, n, w, KV, G, d] → [B, Lp·H·d], then drop the padded tail.
    const mixed = matmul(weights.reshape([rows, group * blockSize, 2 * blockSize]), v)
      .reshape([batch, kvHeads, blocks, group, blockSize, headDim])
      .transpose([0, 2, 4, 1, 3, 5])
      .reshape([batch, padded * heads * headDim]);
    const kept = padded === length ? mixed : mixed.slice([0, 0], [batch, length * heads * headDim]);
    return kept.reshape([batch, length, heads * headDim]) as tf.Tensor3D;
  });
}

/** Zero positions before and after the time axis of [B, N, L, d], as a pad of rank 2. */
function padTime(x: tf.Tensor4D, before: number, after: number): tf.Tensor2D {
  const [batch, heads, length, headDim] = x.shape;
  const flat = x.reshape([batch * heads, length * headDim]) as tf.Tensor2D;
  if (before === 0 && after === 0) return flat;
  return tf.pad(flat, [
    [0, 0],
    [before * headDim, after * headDim],
  ]);
}

/** [B, KV, L, d] → [B·KV·n, 2w, d]: for each block, the previous block's rows then its own. */
function twoBlockWindows(x: tf.Tensor4D, blockSize: number, blocks: number): tf.Tensor3D {
  const [batch, kvHeads, length, headDim] = x.shape;
  const span = blocks * blockSize * headDim;
  const padded = padTime(x, blockSize, blocks * blockSize - length);
  const previous = padded
    .slice([0, 0], [batch * kvHeads, span])
    .reshape([batch * kvHeads, blocks, blockSize * headDim]);
  const current = padded
    .slice([0, blockSize * headDim], [batch * kvHeads, span])
    .reshape([batch * kvHeads, blocks, blockSize * headDim]);
  return tf.concat([previous, current], 2).reshape([batch * kvHeads * blocks, 2 * blockSize, headDim]);
}

/**
 * Additive mask [n, 1, w_b, 2w_b] (w_b the block size) for query j of block i against key m of
 * its two-block window: query t = i·w_b + j sees key s = (i − 1)·w_b + m iff t − w < s ≤ t, i.e.
 * j + w_b − w < m ≤ j + w_b. Block 0 also masks its first w_b keys, the zero padding.
 */
function bandMask(blocks: number, blockSize: number, window: number): tf.Tensor4D {
  const width = 2 * blockSize;
  const band = new Float32Array(blockSize * width).fill(MASKED);
  for (let j = 0; j < blockSize; j++) {
    for (let m = j + blockSize - window + 1; m <= j + blockSize; m++) band[j * width + m] = 0;
  }
  const mask = new Float32Array(blocks * band.length);
  for (let i = 0; i < blocks; i++) mask.set(band, i * band.length);
  for (let j = 0; j < blockSize; j++) mask.fill(MASKED, j * width, j * width + blockSize);
  return tf.tensor4d(mask, [blocks, 1, blockSize, width]);
}
