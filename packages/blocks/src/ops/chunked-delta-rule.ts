import { type FlopCount, InterleaveError, matmul } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { causalMask, cumulativeSum, fromChunks, toChunks } from './chunked-linear-attention.js';

/**
 * The (gated) delta rule, per head with S [d_k, d_v] (docs/design.md#chunked-linear-recurrences):
 *
 *   S_t = α_t (I − β_t k_t k_tᵀ) S_{t−1} + β_t k_t v_tᵀ,   o_t = S_tᵀ q_t,   S_{−1} = 0
 *
 * α_t = exp(g_t) ≤ 1 (g = 0, no gate, is DeltaNet; Gated DeltaNet learns g), β_t ∈ (0, 2).
 *
 * Chunked WY form, chunks of C tokens, G the within-chunk cumulative sum of g, γ_i = exp(G_i),
 * Γ_ij = exp(G_i − G_j) (j ≤ i, so every exponent is ≤ 0). Writing each step as a rank-one update
 * S_t = α_t S_{t−1} + k_t u_tᵀ, the "new values" u of a chunk entered with state S₀ satisfy
 *   u_i = β_i (v_i − γ_i S₀ᵀ k_i − Σ_{j<i} Γ_ij (k_i·k_j) u_j),
 * i.e. (I + A) U = diag(β) V − diag(βγ) K S₀ with A_ij = β_i Γ_ij (k_i·k_j) strictly below the
 * diagonal. With T = (I + A)⁻¹ (unit lower triangular, inverted exactly by blocks), every chunk's
 * W_v = T diag(β) V and W_k = T diag(βγ) K are computed at once, in parallel, and then
 *   U     = W_v − W_k S₀
 *   O     = diag(γ) Q S₀ + (Q Kᵀ ⊙ Γ ⊙ causal) U
 *   S_out = γ_C S₀ + (K ⊙ exp(G_C − G))ᵀ U.
 * Only the two S₀ products and the state update run chunk after chunk (the transition
 * γ_C (I − Kᵀ W_k) is a full matrix, so this recurrence is not a diagonal scan).
 */
export interface DeltaRuleInputs {
  /** [B, H, L, d_k], L2-normalised and scaled. */
  readonly queries: tf.Tensor4D;
  /** [B, H, L, d_k], L2-normalised. */
  readonly keys: tf.Tensor4D;
  /** [B, H, L, d_v]. */
  readonly values: tf.Tensor4D;
  /** [B, H, L], the write strength β. */
  readonly beta: tf.Tensor3D;
  /** [B, H, L], log α ≤ 0; absent for the ungated rule. */
  readonly logDecay?: tf.Tensor3D;
}

/** o [B, H, L, d_v]; `chunkSize` must be a power of two (the blocked inverse halves it). */
export function chunkedDeltaRule(inputs: DeltaRuleInputs, chunkSize: number): tf.Tensor4D {
  if (!Number.isInteger(Math.log2(chunkSize))) {
    throw new InterleaveError(`the delta rule's chunk size must be a power of two, got ${chunkSize}`);
  }
  return tf.tidy(() => {
    const { queries, keys, values, beta, logDecay } = inputs;
    const [batch, heads, length, keyDim] = queries.shape;
    const valueDim = values.shape[3];
    // A sequence shorter than the chunk runs in one chunk of the next power of two.
    const chunk = Math.min(chunkSize, 2 ** Math.ceil(Math.log2(length)));
    const chunks = Math.ceil(length / chunk);
    const rows = batch * heads * chunks;
    const sequences = batch * heads;

    // Padding positions have k = v = β = g = 0: they leave the state alone; their outputs are dropped.
    const q = toChunks(queries, chunk, chunks); // [R, C, d_k]
    const k = toChunks(keys, chunk, chunks);
    const v = toChunks(values, chunk, chunks); // [R, C, d_v]
    const b = toChunks(beta.expandDims(3) as tf.Tensor4D, chunk, chunks); // [R, C, 1]
    const cumulative =
      logDecay === undefined
        ? undefined
        : cumulativeSum(toChunks(logDecay.expandDims(3) as tf.Tensor4D, chunk, chunks)); // G [R, C, 1]
    // Γ_ij = exp(G_i − G_j) on and below the diagonal; min(·, 0) keeps the rest finite.
    const decayBetween =
      cumulative === undefined
        ? undefined
        : tf.exp(tf.minimum(cumulative.sub(cumulative.reshape([rows, 1, chunk])), 0));
    const withDecay = (x: tf.Tensor3D) => (decayBetween === undefined ? x : (x.mul(decayBetween) as tf.Tensor3D));

    const inverse = invertUnitLowerTriangular(k, b, cumulative); // T [R, C, C]
    const gamma = cumulative === undefined ? undefined : tf.exp(cumulative);
    const weightedValues = matmul(inverse, v.mul(b) as tf.Tensor3D); // W_v [R, C, d_v]
    const betaGamma = gamma === undefined ? b : b.mul(gamma);
    const weightedKeys = matmul(inverse, k.mul(betaGamma) as tf.Tensor3D); // W_k [R, C, d_k]
    const scores = withDecay(matmul(q, k, false, true)).mul(causalMask(chunk)) as tf.Tensor3D;
    const queriesFromStart = gamma === undefined ? q : (q.mul(gamma) as tf.Tensor3D);
    let keysToEnd = k;
    let chunkDecay: tf.Tensor | undefined;
    if (cumulative !== undefined) {
      const last = cumulative.slice([0, chunk - 1, 0], [rows, 1, 1]);
      keysToEnd = k.mul(tf.exp(last.sub(cumulative))) as tf.Tensor3D;
      chunkDecay = tf.exp(last).reshape([sequences, chunks, 1, 1]);
    }

    if (chunks === 1) return fromChunks(matmul(scores, weightedValues), batch, heads, length); // S₀ = 0

    // The recurrence over chunks: per chunk two [C, d] × [d, d_v] products and one update. The
    // last chunk's keys and decay only matter for the state after the sequence, which is unused.
    // Slices, not tf.unstack: unstack's gradient breaks when it yields a single tensor (tfjs 4.22).
    const perChunk = (x: tf.Tensor3D, count: number) => {
      const width = x.shape[2];
      const flat = x.reshape([sequences, chunks * chunk * width]);
      return Array.from(
        { length: count },
        (_, c) =>
          flat
            .slice([0, c * chunk * width], [sequences, chunk * width])
            .reshape([sequences, chunk, width]) as tf.Tensor3D,
      );
    };
    const wvChunks = perChunk(weightedValues, chunks);
    const wkChunks = perChunk(weightedKeys, chunks);
    const keyChunks = perChunk(keysToEnd, chunks - 1);
    const decays = chunkDecay?.reshape([sequences, chunks]);
    const decayChunks = Array.from({ length: chunks - 1 }, (_, c) =>
      decays?.slice([0, c], [sequences, 1]).reshape([sequences, 1, 1]),
    );
    let state: tf.Tensor3D = tf.zeros([sequences, keyDim, valueDim]);
    const entering: tf.Tensor3D[] = [];
    const newValues: tf.Tensor3D[] = [];
    for (let c = 0; c < chunks; c++) {
      entering.push(state);
      const u = (wvChunks[c] as tf.Tensor3D).sub(matmul(wkChunks[c] as tf.Tensor3D, state)) as tf.Tensor3D;
      newValues.push(u);
      if (c === chunks - 1) break;
      const decay = decayChunks[c];
      const kept = decay === undefined ? state : (state.mul(decay) as tf.Tensor3D);
      state = kept.add(matmul(keyChunks[c] as tf.Tensor3D, u, true, false)) as tf.Tensor3D;
    }
    const states = tf.stack(entering, 1).reshape([rows, keyDim, valueDim]) as tf.Tensor3D;
    const u = tf.stack(newValues, 1).reshape([rows, chunk, valueDim]) as tf.Tensor3D;
    const out = matmul(queriesFromStart, states).add(matmul(scores, u)) as tf.Tensor3D;
    return fromChunks(out, batch, heads, length);
  });
}

/**
 * (I + A)⁻¹ for A [R, C, C] strictly lower triangular, A_ij = β_i Γ_ij (k_i·k_j), by blocks:
 * [[T₁₁, 0], [A₂₁, T₂₂]]⁻¹ = [[T₁₁⁻¹, 0], [−T₂₂⁻¹ A₂₁ T₁₁⁻¹, T₂₂⁻¹]], from 1×1 blocks up to C×C in
 * log₂ C rounds of batched products. As exact as forward substitution (no power series whose
 * terms could cancel). The off-diagonal blocks A₂₁ are recomputed from k, β and G rather than
 * cut out of A, which would need rank-5 slices.
 */
function invertUnitLowerTriangular(k: tf.Tensor3D, b: tf.Tensor3D, cumulative: tf.Tensor3D | undefined): tf.Tensor3D {
  const [rows, chunk, keyDim] = k.shape;
  let inverse: tf.Tensor3D = tf.ones([rows * chunk, 1, 1]);
  for (let size = 1; size < chunk; size *= 2) {
    const pairs = rows * (chunk / (2 * size));
    const halves = (x: tf.Tensor3D, width: number) =>
      tf
        .split(x.reshape([pairs, 2, size * width]), 2, 1)
        .map((half) => half.reshape([pairs, size, width]) as tf.Tensor3D) as [tf.Tensor3D, tf.Tensor3D];
    const [kFirst, kSecond] = halves(k, keyDim);
    const [, bSecond] = halves(b, 1);
    let offDiagonal = matmul(kSecond, kFirst, false, true).mul(bSecond) as tf.Tensor3D; // A₂₁ [P, s, s]
    if (cumulative !== undefined) {
      const [gFirst, gSecond] = halves(cumulative, 1);
      offDiagonal = offDiagonal.mul(tf.exp(gSecond.sub(gFirst.reshape([pairs, 1, size])))) as tf.Tensor3D;
    }
    // The inverted diagonal blocks so far, [s, s] each, in order: pair p holds blocks 2p and 2p + 1.
    const [t11, t22] = halves(inverse, size);
    const t21 = matmul(matmul(t22, offDiagonal), t11).neg() as tf.Tensor3D;
    const top = tf.concat([t11, tf.zeros([pairs, size, size])], 2);
    const bottom = tf.concat([t21, t22], 2);
    inverse = tf.concat([top, bottom], 1) as tf.Tensor3D; // [P, 2s, 2s]
  }
  return inverse.reshape([rows, chunk, chunk]) as tf.Tensor3D;
}

/**
 * One token of the same recurrence: state [B, H, d_k, d_v], q and k [B, H, d_k] (normalised,
 * q scaled), v [B, H, d_v], beta [B, H], logDecay [B, H] or absent.
 */
export function deltaRuleStep(
  state: tf.Tensor4D,
  token: { queries: tf.Tensor3D; keys: tf.Tensor3D; values: tf.Tensor3D; beta: tf.Tensor2D; logDecay?: tf.Tensor2D },
): { output: tf.Tensor3D; state: tf.Tensor4D } {
  return tf.tidy(() => {
    const { queries, keys, values, beta, logDecay } = token;
    const decayed = logDecay === undefined ? state : state.mul(tf.exp(logDecay).expandDims(2).expandDims(3));
    const predicted = matmul(keys.expandDims(2), decayed).squeeze([2]); // Sᵀk [B, H, d_v]
    const correction = values.sub(predicted).mul(beta.expandDims(2)); // u
    const next = decayed.add(keys.expandDims(3).mul(correction.expandDims(2))) as tf.Tensor4D;
    const output = matmul(queries.expandDims(2), next).squeeze([2]) as tf.Tensor3D;
    return { output, state: next };
  });
}

/**
 * FLOPs per token of `chunkedDeltaRule` per head as the WY form computes them, chunk C (d_k, d_v
 * per head; masked entries of the C × C blocks included): K Kᵀ for the blocked inverse
 * (≈ 2·C·d_k over its levels) and its log₂C rounds of two [s, s] products (≈ 4·C·log₂C / 2),
 * W_v and W_k (2·C·(d_v + d_k)), Q Kᵀ (2·C·d_k), scores·U (2·C·d_v), the chunk-serial
 * W_k S₀, Q S₀ and Kᵀ U (2·d_k·d_v each), and ~4·C + 4·d_k pointwise ops for β, the decays and
 * masks. Products and pointwise ops only: the backward pass counts twice the forward.
 */
export function deltaRuleFlops(
  shape: { heads: number; keyDim: number; valueDim: number; chunk: number },
  seqLen: number,
): FlopCount {
  const { heads, keyDim, valueDim } = shape;
  const chunk = Math.min(shape.chunk, 2 ** Math.ceil(Math.log2(Math.max(1, seqLen))));
  const perHead =
    2 * chunk * keyDim +
    2 * chunk * Math.log2(chunk) +
    2 * chunk * (valueDim + keyDim) +
    2 * chunk * keyDim +
    2 * chunk * valueDim +
    6 * keyDim * valueDim +
    4 * chunk +
    4 * keyDim;
  return { forward: heads * perHead, backward: 2 * heads * perHead };
}
