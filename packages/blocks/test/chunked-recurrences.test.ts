import { SeededRandom, selectBackend } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { chunkedDeltaRule, deltaRuleStep } from '../src/ops/chunked-delta-rule.js';
import { chunkedGatedLinearAttention, gatedLinearAttentionStep } from '../src/ops/chunked-linear-attention.js';

/**
 * The chunked forms against the token-by-token recurrences written plainly in float64
 * (docs/design.md#chunked-linear-recurrences), including the gradients of a random projection
 * of the outputs against the tf-op step form, on sequence lengths that are not multiples of the
 * chunk and with decays strong enough that a factored exp(G_i)·exp(−G_j) would overflow.
 */
interface Dims {
  batch: number;
  heads: number;
  length: number;
  keyDim: number;
  valueDim: number;
}

function draw(size: number, sample: (rng: SeededRandom) => number, seed: number): Float32Array {
  const rng = new SeededRandom(seed, 'chunked-recurrences-test');
  return Float32Array.from({ length: size }, () => sample(rng));
}

/** S_t = diag(exp g_t) S_{t−1} + k_t v_tᵀ, o_t = S_tᵀ q_t in float64; g [B,H,L] or [B,H,L,d_k]. */
function naiveGatedLinearAttention(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  g: Float32Array,
  perFeature: boolean,
  { batch, heads, length, keyDim, valueDim }: Dims,
): Float64Array {
  const out = new Float64Array(batch * heads * length * valueDim);
  for (let bh = 0; bh < batch * heads; bh++) {
    const state = new Float64Array(keyDim * valueDim);
    for (let t = 0; t < length; t++) {
      const row = bh * length + t;
      for (let i = 0; i < keyDim; i++) {
        const decay = Math.exp(perFeature ? (g[row * keyDim + i] as number) : (g[row] as number));
        for (let j = 0; j < valueDim; j++) {
          state[i * valueDim + j] =
            decay * (state[i * valueDim + j] as number) +
            (k[row * keyDim + i] as number) * (v[row * valueDim + j] as number);
        }
      }
      for (let j = 0; j < valueDim; j++) {
        let sum = 0;
        for (let i = 0; i < keyDim; i++) sum += (q[row * keyDim + i] as number) * (state[i * valueDim + j] as number);
        out[row * valueDim + j] = sum;
      }
    }
  }
  return out;
}

/** S_t = α_t (I − β_t k_t k_tᵀ) S_{t−1} + β_t k_t v_tᵀ, o_t = S_tᵀ q_t in float64. */
function naiveDeltaRule(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  beta: Float32Array,
  g: Float32Array | undefined,
  { batch, heads, length, keyDim, valueDim }: Dims,
): Float64Array {
  const out = new Float64Array(batch * heads * length * valueDim);
  for (let bh = 0; bh < batch * heads; bh++) {
    const state = new Float64Array(keyDim * valueDim);
    for (let t = 0; t < length; t++) {
      const row = bh * length + t;
      const alpha = g === undefined ? 1 : Math.exp(g[row] as number);
      for (let s = 0; s < state.length; s++) state[s] = alpha * (state[s] as number);
      for (let j = 0; j < valueDim; j++) {
        let predicted = 0;
        for (let i = 0; i < keyDim; i++)
          predicted += (k[row * keyDim + i] as number) * (state[i * valueDim + j] as number);
        const u = (beta[row] as number) * ((v[row * valueDim + j] as number) - predicted);
        for (let i = 0; i < keyDim; i++)
          state[i * valueDim + j] = (state[i * valueDim + j] as number) + (k[row * keyDim + i] as number) * u;
      }
      for (let j = 0; j < valueDim; j++) {
        let sum = 0;
        for (let i = 0; i < keyDim; i++) sum += (q[row * keyDim + i] as number) * (state[i * valueDim + j] as number);
        out[row * valueDim + j] = sum;
      }
    }
  }
  return out;
}

function normalizeRows(x: Float32Array, width: number): Float32Array {
  const out = x.slice();
  for (let r = 0; r < x.length / width; r++) {
    let norm = 0;
    for (let i = 0; i < width; i++) norm += (x[r * width + i] as number) ** 2;
    for (let i = 0; i < width; i++) out[r * width + i] = (x[r * width + i] as number) / Math.sqrt(norm);
  }
  return out;
}

function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs((actual[i] as number) - (expected[i] as number)));
    scale = Math.max(scale, Math.abs(expected[i] as number));
  }
  return diff / scale;
}

/** Runs a step function over the sequence with tf ops: the recurrent form the blocks' `step` uses. */
function stepwise(
  dims: Dims,
  step: (state: tf.Tensor4D, t: number) => { output: tf.Tensor3D; state: tf.Tensor4D },
): tf.Tensor4D {
  let state: tf.Tensor4D = tf.zeros([dims.batch, dims.heads, dims.keyDim, dims.valueDim]);
  const outputs: tf.Tensor3D[] = [];
  for (let t = 0; t < dims.length; t++) {
    const result = step(state, t);
    outputs.push(result.output);
    state = result.state;
  }
  return tf.stack(outputs, 2) as tf.Tensor4D;
}

/** x[:, :, t] (a slice: tf.gather's gradient has no wasm kernel). */
function at(x: tf.Tensor, t: number): tf.Tensor {
  const begin = x.shape.map((_, axis) => (axis === 2 ? t : 0));
  const size = x.shape.map((extent, axis) => (axis === 2 ? 1 : extent));
  return x.slice(begin, size).squeeze([2]);
}

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`chunked recurrences on ${backend}`, () => {
    beforeAll(async () => {
      await selectBackend(backend);
    });

    const dims: Dims = { batch: 2, heads: 3, length: 23, keyDim: 5, valueDim: 4 };
    const { batch, heads, length, keyDim, valueDim } = dims;
    const tokens = batch * heads * length;
    const q = draw(tokens * keyDim, (rng) => rng.normal(), 1);
    const k = draw(tokens * keyDim, (rng) => rng.normal(), 2);
    const v = draw(tokens * valueDim, (rng) => rng.normal(), 3);

    for (const perFeature of [false, true]) {
      // Down to −12 per token: a chunk of 8 then decays by up to e⁻⁹⁶, past float32's range.
      const g = draw(perFeature ? tokens * keyDim : tokens, (rng) => -(rng.uniform(0, 1) ** 3) * 12, 4);
      const expected = naiveGatedLinearAttention(q, k, v, g, perFeature, dims);
      for (const chunk of [1, 4, 8, 64]) {
        it(`gated linear attention (${perFeature ? 'per-feature' : 'per-head'} decay), chunks of ${chunk}, matches the float64 recurrence`, async () => {
          const out = tf.tidy(() =>
            chunkedGatedLinearAttention(
              {
                queries: tf.tensor4d(q, [batch, heads, length, keyDim]),
                keys: tf.tensor4d(k, [batch, heads, length, keyDim]),
                values: tf.tensor4d(v, [batch, heads, length, valueDim]),
                logDecay: perFeature
                  ? tf.tensor4d(g, [batch, heads, length, keyDim])
                  : tf.tensor3d(g, [batch, heads, length]),
              },
              chunk,
            ),
          );
          expect(relativeError(await out.data(), expected)).toBeLessThan(2e-5);
          out.dispose();
        });
      }

      it(`gated linear attention (${perFeature ? 'per-feature' : 'per-head'} decay): chunked gradients equal the step form's`, async () => {
        const gShape = perFeature ? [batch, heads, length, keyDim] : [batch, heads, length];
        const weights = tf.tensor4d(
          draw(tokens * valueDim, (rng) => rng.normal(), 5),
          [batch, heads, length, valueDim],
        );
        const inputs = [
          tf.tensor4d(q, [batch, heads, length, keyDim]),
          tf.tensor4d(k, [batch, heads, length, keyDim]),
          tf.tensor4d(v, [batch, heads, length, valueDim]),
          tf.tensor(
            g.map((x) => x / 4),
            gShape,
          ),
        ];
        const chunked = tf.grads((qq, kk, vv, gg) =>
          chunkedGatedLinearAttention(
            {
              queries: qq as tf.Tensor4D,
              keys: kk as tf.Tensor4D,
              values: vv as tf.Tensor4D,
              logDecay: gg as tf.Tensor3D,
            },
            4,
          )
            .mul(weights)
            .sum(),
        )(inputs);
        const stepped = tf.grads((qq, kk, vv, gg) =>
          stepwise(dims, (state, t) =>
            gatedLinearAttentionStep(state, {
              queries: at(qq, t) as tf.Tensor3D,
              keys: at(kk, t) as tf.Tensor3D,
              values: at(vv, t) as tf.Tensor3D,
              logDecay: at(gg, t) as tf.Tensor2D,
            }),
          )
            .mul(weights)
            .sum(),
        )(inputs);
        for (const [index, gradient] of chunked.entries()) {
          const reference = await (stepped[index] as tf.Tensor).data();
          expect(relativeError(await gradient.data(), reference), `gradient ${index}`).toBeLessThan(1e-4);
        }
        tf.dispose([weights, inputs, chunked, stepped]);
      });
    }

    const kn = normalizeRows(k, keyDim);
    const qn = normalizeRows(q, keyDim);
    const beta = draw(tokens, (rng) => rng.uniform(0, 2), 6);
    for (const gated of [false, true]) {
      const g = gated ? draw(tokens, (rng) => -(rng.uniform(0, 1) ** 3) * 12, 7) : undefined;
      const expected = naiveDeltaRule(qn, kn, v, beta, g, dims);
      for (const chunk of [1, 4, 8, 32]) {
        it(`${gated ? 'gated ' : ''}delta rule, chunks of ${chunk}, matches the float64 recurrence`, async () => {
          const out = tf.tidy(() =>
            chunkedDeltaRule(
              {
                queries: tf.tensor4d(qn, [batch, heads, length, keyDim]),
                keys: tf.tensor4d(kn, [batch, heads, length, keyDim]),
                values: tf.tensor4d(v, [batch, heads, length, valueDim]),
                beta: tf.tensor3d(beta, [batch, heads, length]),
                ...(g === undefined ? {} : { logDecay: tf.tensor3d(g, [batch, heads, length]) }),
              },
              chunk,
            ),
          );
          expect(relativeError(await out.data(), expected)).toBeLessThan(2e-5);
          out.dispose();
        });
      }

      it(`${gated ? 'gated ' : ''}delta rule: chunked gradients equal the step form's`, async () => {
        const weights = tf.tensor4d(
          draw(tokens * valueDim, (rng) => rng.normal(), 8),
          [batch, heads, length, valueDim],
        );
        const inputs = [
          tf.tensor4d(qn, [batch, heads, length, keyDim]),
          tf.tensor4d(kn, [batch, heads, length, keyDim]),
          tf.tensor4d(v, [batch, heads, length, valueDim]),
          tf.tensor3d(beta, [batch, heads, length]),
          tf.tensor3d(g === undefined ? new Float32Array(tokens) : g.map((x) => x / 4), [batch, heads, length]),
        ];
        const chunked = tf.grads((qq, kk, vv, bb, gg) =>
          chunkedDeltaRule(
            {
              queries: qq as tf.Tensor4D,
              keys: kk as tf.Tensor4D,
              values: vv as tf.Tensor4D,
              beta: bb as tf.Tensor3D,
              logDecay: gg as tf.Tensor3D,
            },
            8,
          )
            .mul(weights)
            .sum(),
        )(inputs);
        const stepped = tf.grads((qq, kk, vv, bb, gg) =>
          stepwise(dims, (state, t) =>
            deltaRuleStep(state, {
              queries: at(qq, t) as tf.Tensor3D,
              keys: at(kk, t) as tf.Tensor3D,
              values: at(vv, t) as tf.Tensor3D,
              beta: at(bb, t) as tf.Tensor2D,
              logDecay: at(gg, t) as tf.Tensor2D,
            }),
          )
            .mul(weights)
            .sum(),
        )(inputs);
        for (const [index, gradient] of chunked.entries()) {
          const reference = await (stepped[index] as tf.Tensor).data();
          expect(relativeError(await gradient.data(), reference), `gradient ${index}`).toBeLessThan(1e-4);
        }
        tf.dispose([weights, inputs, chunked, stepped]);
      });
    }
  });
}
