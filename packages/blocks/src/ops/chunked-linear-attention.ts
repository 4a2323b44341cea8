import { type FlopCount, matmul } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { linearRecurrence } from '../scan/linear-recurrence.js';

/**
 * Gated linear attention with a diagonal decay, the recurrence behind Mamba-2's SSD and GLA
 * (docs/design.md#chunked-linear-recurrences):
 *
 *   S_t = diag(exp(g_t)) S_{t−1} + k_t v_tᵀ,   o_t = S_tᵀ q_t,   S_{−1} = 0
 *
 * per head, with S [d_k, d_v]. The log-decay g ≤ 0 is either one number per head and token
 * ([B, H, L]: Mamba-2's scalar A·Δ) or one per key feature ([B, H, L, d_k]: GLA's gate).
 *
 * The chunked form cuts the sequence into chunks of C tokens. With G the within-chunk cumulative
 * sum of g, a chunk's outputs are
 *   intra:  o_i += Σ_{j≤i} (q_i ⊙ exp(G_i − G_j))·k_j v_j      (a masked [C, C] product)
 *   inter:  o_i += (q_i ⊙ exp(G_i))ᵀ S_prev                    (the state entering the chunk)
 * and the state leaving it is exp(G_C) ⊙ S_prev + Σ_j (k_j ⊙ exp(G_C − G_j)) v_jᵀ: a linear
 * recurrence over the chunks with a diagonal decay, run by `linearRecurrence` (the fused kernel
 * on cpu and wasm). Every exponent above is ≤ 0, so no intermediate can overflow however strong
 * the decay; for the per-feature decay the intra-chunk weights are therefore formed explicitly
 * as [C, C, d_k] rather than by factoring exp(G_i − G_j) into exp(G_i)·exp(−G_j), which
 * overflows in float32 once a chunk's decay passes e⁻⁸⁸.
 *
 * Pads, slices and concats run on tensors of rank ≤ 3 (tfjs-wasm slices higher ranks element by
 * element in JavaScript).
 */
export interface GatedLinearAttentionInputs {
  /** [B, H, L, d_k], already scaled. */
  readonly queries: tf.Tensor4D;
  /** [B, H, L, d_k]. */
  readonly keys: tf.Tensor4D;
  /** [B, H, L, d_v]. */
  readonly values: tf.Tensor4D;
  /** log of the decay (≤ 0): [B, H, L] (per head) or [B, H, L, d_k] (per key feature). */
  readonly logDecay: tf.Tensor3D | tf.Tensor4D;
}

/** o [B, H, L, d_v] of the recurrence above, computed chunk by chunk (chunks of `chunkSize`, the last padded). */
export function chunkedGatedLinearAttention(inputs: GatedLinearAttentionInputs, chunkSize: number): tf.Tensor4D {
  return tf.tidy(() => {
    const { queries, keys, values, logDecay } = inputs;
    const [batch, heads, length, keyDim] = queries.shape;
    const valueDim = values.shape[3];
    const chunk = Math.min(chunkSize, length);
    const chunks = Math.ceil(length / chunk);
    const rows = batch * heads * chunks;
    const perFeature = logDecay.rank === 4;

    const q = toChunks(queries, chunk, chunks); // [R, C, d_k]
    const k = toChunks(keys, chunk, chunks);
    const v = toChunks(values, chunk, chunks); // [R, C, d_v]
    // Padding positions have k = v = 0 and g = 0: they change no state and their outputs are dropped.
    const g = perFeature
      ? toChunks(logDecay as tf.Tensor4D, chunk, chunks)
      : toChunks((logDecay as tf.Tensor3D).expandDims(3) as tf.Tensor4D, chunk, chunks);
    const cumulative = cumulativeSum(g); // G [R, C, d_k or 1]

    const intra = perFeature
      ? intraChunkPerFeature(q, k, v, cumulative)
      : intraChunkScalar(q, k, v, cumulative.reshape([rows, chunk]) as tf.Tensor2D);

    let out: tf.Tensor3D = intra;
    if (chunks > 1) {
      const gWidth = cumulative.shape[2];
      const last = cumulative.slice([0, chunk - 1, 0], [rows, 1, gWidth]) as tf.Tensor3D; // G_C
      const keysToEnd = k.mul(tf.exp(last.sub(cumulative))) as tf.Tensor3D;
      const contribution = matmul(keysToEnd, v, true, false); // [R, d_k, d_v]
      const stateSize = keyDim * valueDim;
      const chunkDecay = broadcastAlong(tf.exp(last).reshape([batch * heads, chunks, gWidth, 1]), [
        batch * heads,
        chunks,
        keyDim,
        valueDim,
      ]).reshape([batch * heads, chunks, stateSize]) as tf.Tensor3D;
      const states = linearRecurrence(
        chunkDecay,
        contribution.reshape([batch * heads, chunks, stateSize]) as tf.Tensor3D,
      );
      // The state entering chunk c is the one leaving chunk c − 1 (zero for the first).
      const entering = tf
        .concat(
          [tf.zeros([batch * heads, 1, stateSize]), states.slice([0, 0, 0], [batch * heads, chunks - 1, stateSize])],
          1,
        )
        .reshape([rows, keyDim, valueDim]) as tf.Tensor3D;
      const queriesFromStart = q.mul(tf.exp(cumulative)) as tf.Tensor3D;
      out = out.add(matmul(queriesFromStart, entering)) as tf.Tensor3D;
    }
    return fromChunks(out, batch, heads, length);
  });
}

/** Masked scores (q_i·k_j)·exp(G_i − G_j), j ≤ i, for a decay shared by all key features. */
function intraChunkScalar(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, cumulative: tf.Tensor2D): tf.Tensor3D {
  const chunk = q.shape[1];
  const gap = cumulative.expandDims(2).sub(cumulative.expandDims(1)); // [R, C, C]: G_i − G_j
  // min(·, 0) keeps the masked (j > i) entries finite before the mask zeroes them.
  const decay = tf.exp(tf.minimum(gap, 0)).mul(causalMask(chunk));
  const scores = matmul(q, k, false, true).mul(decay) as tf.Tensor3D;
  return matmul(scores, v);
}

/** Σ_d q_id k_jd exp(G_id − G_jd), j ≤ i, formed explicitly (see the file comment for why). */
function intraChunkPerFeature(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, cumulative: tf.Tensor3D): tf.Tensor3D {
  const chunk = q.shape[1];
  const gap = cumulative.expandDims(2).sub(cumulative.expandDims(1)); // [R, C, C, d_k]
  const decay = tf.exp(tf.minimum(gap, 0)).mul(causalMask(chunk).expandDims(2));
  const scores = q.expandDims(2).mul(k.expandDims(1)).mul(decay).sum(3) as tf.Tensor3D;
  return matmul(scores, v);
}

/**
 * Running sum over axis 1 of [R, C, w], as a product with a triangular matrix of ones: tfjs's
 * `cumsum` gradient returns a wrongly transposed tensor for any axis but the last (4.22).
 */
export function cumulativeSum(x: tf.Tensor3D): tf.Tensor3D {
  return tf.tidy(() => {
    const [rows, length, width] = x.shape;
    const flat = width === 1 ? x.reshape([rows, length]) : x.transpose([0, 2, 1]).reshape([rows * width, length]);
    const sums = matmul(flat as tf.Tensor2D, causalMask(length), false, true);
    return (
      width === 1 ? sums.reshape([rows, length, 1]) : sums.reshape([rows, width, length]).transpose([0, 2, 1])
    ) as tf.Tensor3D;
  });
}

/**
 * `x` repeated to `shape` as a broadcasting product with ones. Not tf.tile or tf.broadcastTo
 * (which runs the Tile kernel): their gradient is a slice and an add per repetition in tfjs
 * 4.22, which dominated a training step; a product's gradient is one reduction.
 */
export function broadcastAlong(x: tf.Tensor, shape: number[]): tf.Tensor {
  return x.mul(tf.ones(shape));
}

/** [C, C] with ones where j ≤ i (j < i when `strict`). */
export function causalMask(size: number, strict = false): tf.Tensor2D {
  const mask = new Float32Array(size * size);
  for (let i = 0; i < size; i++) {
    for (let j = 0; j <= (strict ? i - 1 : i); j++) mask[i * size + j] = 1;
  }
  return tf.tensor2d(mask, [size, size]);
}

/** [B, H, L, d] → [B·H·n, C, d], the time axis zero-padded to n·C. */
export function toChunks(x: tf.Tensor4D, chunk: number, chunks: number): tf.Tensor3D {
  const [batch, heads, length, width] = x.shape;
  const flat = x.reshape([batch * heads, length * width]) as tf.Tensor2D;
  const padding = (chunks * chunk - length) * width;
  const padded =
    padding === 0
      ? flat
      : tf.pad(flat, [
          [0, 0],
          [0, padding],
        ]);
  return padded.reshape([batch * heads * chunks, chunk, width]) as tf.Tensor3D;
}

/** [B·H·n, C, d] → [B, H, L, d], dropping the padded tail. */
export function fromChunks(x: tf.Tensor3D, batch: number, heads: number, length: number): tf.Tensor4D {
  const width = x.shape[2];
  const flat = x.reshape([batch * heads, -1]) as tf.Tensor2D;
  const kept = flat.shape[1] === length * width ? flat : flat.slice([0, 0], [batch * heads, length * width]);
  return kept.reshape([batch, heads, length, width]) as tf.Tensor4D;
}

/**
 * One token of the same recurrence: state [B, H, d_k, d_v], q and k [B, H, d_k], v [B, H, d_v],
 * logDecay [B, H] or [B, H, d_k]. Returns o [B, H, d_v] and the new state.
 */
export function gatedLinearAttentionStep(
  state: tf.Tensor4D,
  token: { queries: tf.Tensor3D; keys: tf.Tensor3D; values: tf.Tensor3D; logDecay: tf.Tensor2D | tf.Tensor3D },
): { output: tf.Tensor3D; state: tf.Tensor4D } {
  return tf.tidy(() => {
    const { queries, keys, values, logDecay } = token;
    const decay = tf.exp(logDecay.rank === 3 ? logDecay.expandDims(3) : logDecay.expandDims(2).expandDims(3));
    const next = decay.mul(state).add(keys.expandDims(3).mul(values.expandDims(2))) as tf.Tensor4D;
    const output = matmul(queries.expandDims(2), next).squeeze([2]) as tf.Tensor3D;
    return { output, state: next };
  });
}

export interface ChunkedShape {
  readonly heads: number;
  readonly keyDim: number;
  readonly valueDim: number;
  /** Tokens per chunk as run (min(chunk_size, L)). */
  readonly chunk: number;
  readonly perFeatureDecay: boolean;
}

/**
 * FLOPs per token of `chunkedGatedLinearAttention`, as the chunked algorithm computes them (a
 * whole C × C block per chunk, masked entries included, since that is the form's intrinsic
 * cost), per head: the running sum of g (2·C per decay), the intra-chunk scores (q·k 2·C·d_k
 * and 5 pointwise ops per entry for the masked decay — or, per feature, 7 per entry and
 * feature), scores·V (2·C·d_v), the chunk's contribution kᵀv and the inter-chunk q·S
 * (2·d_k·d_v each, with 3·d_k + 2·w pointwise for the decays), the recurrence over chunks
 * (2·d_k·d_v / C) and the final add (d_v). Every term is a product or a pointwise op, so the
 * backward pass counts twice the forward.
 */
export function chunkedLinearAttentionFlops(shape: ChunkedShape): FlopCount {
  const { heads, keyDim, valueDim, chunk } = shape;
  const decayWidth = shape.perFeatureDecay ? keyDim : 1;
  const scores = shape.perFeatureDecay ? 7 * chunk * keyDim : 2 * chunk * keyDim + 5 * chunk;
  const perHead =
    2 * chunk * decayWidth +
    scores +
    2 * chunk * valueDim +
    4 * keyDim * valueDim +
    3 * keyDim +
    2 * decayWidth +
    (2 * keyDim * valueDim) / chunk +
    valueDim;
  return { forward: heads * perHead, backward: 2 * heads * perHead };
}
