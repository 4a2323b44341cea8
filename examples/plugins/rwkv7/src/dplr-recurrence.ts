/**
 * The generalized delta rule of RWKV-7 (diagonal plus rank one, "DPLR"), per head, with the
 * state H = Sᵀ [d_k, d_v] (fla's layout; RWKV-7's S is its transpose):
 *
 *   H_t = diag(w_t) H_{t−1} + b_t (a_tᵀ H_{t−1}) + k_t v_tᵀ,   o_t = H_tᵀ r_t,   H_{−1} = 0
 *
 * i.e. S_t = S_{t−1} (diag(w_t) + a_t b_tᵀ) + v_t k_tᵀ. RWKV-7 feeds a = −κ̂, b = κ̂ ⊙ α (κ̂ the
 * normalised removal key, α the in-context learning rate), w_t = exp(λ_t) with λ_t ≤ 0.
 *
 * Chunked form, chunks of C tokens entered with state H₀. G is the within-chunk inclusive
 * cumulative sum of λ; write u_t = a_tᵀ H_{t−1} (the row the rank-one term adds). Unrolling,
 *
 *   u_t = (a_t ⊙ e^{G_{t−1}})ᵀ H₀ + Σ_{s<t} (a_t ⊙ e^{G_{t−1} − G_s})ᵀ (b_s u_s + k_s v_sᵀ)
 *
 * so with Ã = A ⊙ e^{G−λ}, B̂ = B ⊙ e^{−G}, K̂ = K ⊙ e^{−G}, L_ab = strict(Ã B̂ᵀ) and
 * L_ak = strict(Ã K̂ᵀ):  (I − L_ab) U = Ã H₀ + L_ak V. With T = (I − L_ab)⁻¹ (unit lower
 * triangular, exact as (I + L)(I + L²)(I + L⁴)… since L is nilpotent), every chunk's
 * W = T Ã and Ū = T L_ak V are computed at once, in parallel, and then chunk after chunk
 *
 *   U     = W H₀ + Ū
 *   O     = R̃ H₀ + incl(R̃ B̂ᵀ) U + incl(R̃ K̂ᵀ) V              R̃ = R ⊙ e^{G}
 *   H_out = e^{G_C} ⊙ H₀ + (B ⊙ e^{G_C − G})ᵀ U + (K ⊙ e^{G_C − G})ᵀ V.
 *
 * e^{−G} grows along a chunk; RWKV-7's decay is bounded (λ ≥ −e^{−1/2} per token), so a chunk of
 * 64 keeps it below e^{39} and every masked-out product finite (hence the schema's cap).
 */
import { type FlopCount, InterleaveError, matmul } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';

/** Per token and head: r, k, a, b, logDecay [.., d_k]; v [.., d_v]. */
export interface DplrInputs<T extends tf.Tensor> {
  readonly r: T;
  readonly k: T;
  readonly v: T;
  /** λ = log w ≤ 0, per key feature. */
  readonly logDecay: T;
  readonly a: T;
  readonly b: T;
}

/** The largest chunk the factored form keeps finite for λ ≥ −e^{−1/2} (see above). */
export const MAX_CHUNK = 64;

/** [C, C] ones on and below the diagonal (`strict`: below only). */
function lowerTriangle(size: number, strict: boolean): tf.Tensor2D {
  return tf.tidy(() => {
    const band = tf.linalg.bandPart(tf.ones([size, size]), -1, 0) as tf.Tensor2D;
    return strict ? (band.sub(tf.eye(size)) as tf.Tensor2D) : band;
  });
}

/**
 * Inclusive cumulative sum over axis 1 of x [R, C, W], as a product with a triangle (tf.cumsum's
 * gradient is wrong for any axis but the last in tfjs 4.22).
 */
function cumulativeSum(x: tf.Tensor3D): tf.Tensor3D {
  return tf.tidy(() => {
    const [rows, length, width] = x.shape;
    const flat = x.transpose([0, 2, 1]).reshape([rows * width, length]) as tf.Tensor2D;
    const sums = matmul(flat, lowerTriangle(length, false), false, true);
    return sums.reshape([rows, width, length]).transpose([0, 2, 1]) as tf.Tensor3D;
  });
}

/** (I − L)⁻¹ for L [R, C, C] strictly lower triangular, C a power of two. */
function invertUnitLower(strictLower: tf.Tensor3D): tf.Tensor3D {
  return tf.tidy(() => {
    const size = strictLower.shape[1];
    const identity = tf.eye(size).expandDims(0);
    let power = strictLower;
    let inverse = strictLower.add(identity) as tf.Tensor3D;
    for (let span = 2; span < size; span *= 2) {
      power = matmul(power, power);
      inverse = matmul(inverse, power.add(identity) as tf.Tensor3D);
    }
    return inverse;
  });
}

/** o [B, H, L, d_v] for inputs [B, H, L, ·]; `chunkSize` a power of two ≤ MAX_CHUNK. */
export function chunkedDplr(inputs: DplrInputs<tf.Tensor4D>, chunkSize: number): tf.Tensor4D {
  if (!Number.isInteger(Math.log2(chunkSize)) || chunkSize > MAX_CHUNK) {
    throw new InterleaveError(`rwkv7: chunk_size must be a power of two ≤ ${MAX_CHUNK}, got ${chunkSize}`);
  }
  return tf.tidy(() => {
    const [batch, heads, length, keyDim] = inputs.r.shape;
    const valueDim = inputs.v.shape[3];
    // A sequence shorter than the chunk runs in one chunk of the next power of two.
    const chunk = Math.min(chunkSize, 2 ** Math.ceil(Math.log2(Math.max(length, 1))));
    const chunks = Math.ceil(length / chunk);
    const sequences = batch * heads;
    const rows = sequences * chunks;
    // Padding at the end (all zeros, λ = 0) only follows the real tokens; its outputs are dropped.
    const toChunks = (x: tf.Tensor4D) => {
      const width = x.shape[3];
      const padded = tf.pad(x, [
        [0, 0],
        [0, 0],
        [0, chunks * chunk - length],
        [0, 0],
      ]);
      return padded.reshape([rows, chunk, width]) as tf.Tensor3D;
    };
    const r = toChunks(inputs.r);
    const k = toChunks(inputs.k);
    const v = toChunks(inputs.v);
    const a = toChunks(inputs.a);
    const b = toChunks(inputs.b);
    const logDecay = toChunks(inputs.logDecay);

    const cumulative = cumulativeSum(logDecay); // G [R, C, d_k]
    const growth = tf.exp(cumulative.neg()); // e^{−G}
    const decayedA = a.mul(tf.exp(cumulative.sub(logDecay))) as tf.Tensor3D; // Ã
    const decayedR = r.mul(tf.exp(cumulative)) as tf.Tensor3D; // R̃
    const grownB = b.mul(growth) as tf.Tensor3D; // B̂
    const grownK = k.mul(growth) as tf.Tensor3D; // K̂
    const last = cumulative.slice([0, chunk - 1, 0], [rows, 1, keyDim]);
    const toEnd = tf.exp(last.sub(cumulative)); // e^{G_C − G} ≤ 1
    const keysToEnd = k.mul(toEnd) as tf.Tensor3D;
    const bToEnd = b.mul(toEnd) as tf.Tensor3D;
    const chunkDecay = tf.exp(last).reshape([rows, keyDim, 1]); // e^{G_C}, scales H's rows

    const strict = lowerTriangle(chunk, true);
    const inclusive = lowerTriangle(chunk, false);
    const transitions = invertUnitLower(matmul(decayedA, grownB, false, true).mul(strict) as tf.Tensor3D); // T
    const fromKeys = matmul(decayedA, grownK, false, true).mul(strict) as tf.Tensor3D; // L_ak
    const stateWeights = matmul(transitions, decayedA); // W [R, C, d_k]
    const rowOffsets = matmul(transitions, matmul(fromKeys, v)); // Ū [R, C, d_v]
    const scoresB = matmul(decayedR, grownB, false, true).mul(inclusive) as tf.Tensor3D;
    const scoresK = matmul(decayedR, grownK, false, true).mul(inclusive) as tf.Tensor3D;

    // Only the products with the entering state run chunk after chunk. Slices, not tf.unstack:
    // the last chunk's state-update pieces go unused, and Unpack's gradient cannot skip them.
    const chunkAt = (x: tf.Tensor3D, c: number) => {
      const [, height, width] = x.shape;
      return x
        .reshape([sequences, chunks, height, width])
        .slice([0, c, 0, 0], [sequences, 1, height, width])
        .reshape([sequences, height, width]) as tf.Tensor3D;
    };
    let state = tf.zeros([sequences, keyDim, valueDim]) as tf.Tensor3D;
    const outputs: tf.Tensor3D[] = [];
    for (let c = 0; c < chunks; c++) {
      const values = chunkAt(v, c);
      const u = matmul(chunkAt(stateWeights, c), state).add(chunkAt(rowOffsets, c)) as tf.Tensor3D;
      outputs.push(
        matmul(chunkAt(decayedR, c), state)
          .add(matmul(chunkAt(scoresB, c), u))
          .add(matmul(chunkAt(scoresK, c), values)) as tf.Tensor3D,
      );
      if (c < chunks - 1) {
        state = chunkAt(chunkDecay as tf.Tensor3D, c)
          .mul(state)
          .add(matmul(chunkAt(bToEnd, c), u, true))
          .add(matmul(chunkAt(keysToEnd, c), values, true)) as tf.Tensor3D;
      }
    }
    return tf
      .stack(outputs, 1)
      .reshape([batch, heads, chunks * chunk, valueDim])
      .slice([0, 0, 0, 0], [batch, heads, length, valueDim]) as tf.Tensor4D;
  });
}

/** One token: inputs [B, H, ·], state H [B, H, d_k, d_v] → o [B, H, d_v] and the next state. */
export function dplrStep(
  state: tf.Tensor4D,
  inputs: DplrInputs<tf.Tensor3D>,
): { output: tf.Tensor3D; state: tf.Tensor4D } {
  return tf.tidy(() => {
    const column = (x: tf.Tensor3D) => x.expandDims(3) as tf.Tensor4D; // [B, H, n, 1]
    const row = (x: tf.Tensor3D) => x.expandDims(2) as tf.Tensor4D; // [B, H, 1, n]
    const removed = matmul(row(inputs.a), state); // aᵀ H [B, H, 1, d_v]
    const next = tf
      .exp(column(inputs.logDecay))
      .mul(state)
      .add(matmul(column(inputs.b), removed))
      .add(matmul(column(inputs.k), row(inputs.v))) as tf.Tensor4D;
    const output = matmul(row(inputs.r), next).squeeze([2]) as tf.Tensor3D;
    return { output, state: next };
  });
}

/**
 * FLOPs per token and head of `chunkedDplr` as implemented (a multiply-add is 2): the within-chunk
 * products and the blocked inverse, the state products run once per chunk, and the exponentials
 * and scalings; its backward (autodiff) is twice the forward, as for linear layers.
 */
export function dplrFlops(keyDim: number, valueDim: number, chunk: number): FlopCount {
  const multiplyAdds =
    4 * chunk * keyDim + // Ã B̂ᵀ, Ã K̂ᵀ, R̃ B̂ᵀ, R̃ K̂ᵀ
    2 * Math.max(0, Math.log2(chunk) - 1) * chunk * chunk + // (I − L)⁻¹: two C×C products per doubling
    chunk * keyDim + // W = T Ã
    2 * chunk * valueDim + // Ū = T (L_ak V)
    2 * chunk * valueDim + // incl(R̃ B̂ᵀ) U, incl(R̃ K̂ᵀ) V
    4 * keyDim * valueDim; // W H₀, R̃ H₀, the two state-update products
  const pointwise = 12 * keyDim + 4 * chunk + (2 * keyDim * valueDim) / chunk;
  return { forward: 2 * multiplyAdds + pointwise, backward: 4 * multiplyAdds + 2 * pointwise };
}
