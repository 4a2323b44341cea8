/**
 * Based (Arora et al. 2024, "Simple linear attention language models balance the recall-throughput
 * tradeoff"; HazyResearch/zoology `zoology/mixers/based.py`): linear attention whose feature map
 * is the 2nd-order Taylor expansion of exp, after a short causal convolution, meant to be stacked
 * with sliding-window attention.
 *
 *   x̃ = conv_K(x)                                  depthwise causal, PyTorch Conv1d layout
 *   q = W_q x̃, k = W_k x̃ ([H, F] per token), v = W_v x̃ ([H, D/H])
 *   φ(z) = [1, z / F^¼, (z ⊗ z) / (√2 · √F)]        1 + F + F² features
 *   y_t = W_o · ( Σ_{s≤t} (φ(q_t)·φ(k_s)) v_s ) / ( Σ_{s≤t} φ(q_t)·φ(k_s) + ε )
 *
 * φ(q)·φ(k) = 1 + S + S²/2 with S = q·k/√F, so the parallel form never builds φ: it is causal
 * attention with the weights 1 + S + S²/2 (always ≥ 1/2, so the normaliser is safe). The
 * recurrent form keeps Σ φ(k_s) ⊗ v_s [H, 1+F+F², D/H] and Σ φ(k_s) [H, 1+F+F²], a state
 * whose size does not grow with the sequence.
 */
import {
  type BlockDefinition,
  constantInit,
  depthwiseConvFlops,
  fanInUniformInit,
  float32State,
  linearFlops,
  type Mixer,
  matmul,
  pointwiseFlops,
  scaleFlops,
  sumFlops,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';

export const basedSchema = z.strictObject({
  /** F: the width of q and k per head before the feature map (Zoology's default 16). */
  feature_dim: z.number().int().positive().default(16),
  heads: z.number().int().positive().default(1),
  /** Taps of the short causal convolution before the projections. */
  conv_size: z.number().int().min(2).default(3),
  /** Added to the normaliser; the Taylor weights are ≥ 1/2, so this only guards round-off. */
  eps: z.number().positive().default(1e-6),
});

export type BasedConfig = z.infer<typeof basedSchema>;

export type BasedState = {
  /** The last conv_size − 1 inputs, oldest first: [B, K − 1, D]. */
  window: tf.Tensor3D;
  /** Σ φ(k_s) ⊗ v_s: [B, H, 1 + F + F², D/H]. */
  kv: tf.Tensor4D;
  /** Σ φ(k_s): [B, H, 1 + F + F²]. */
  normaliser: tf.Tensor3D;
};

/** φ(z) for z [..., F]: [1, z / F^¼, (z ⊗ z) / (√2·√F)] → [..., 1 + F + F²]. */
export function taylorFeatures(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const features = x.shape[x.shape.length - 1] as number;
    const outer = x.expandDims(-1).mul(x.expandDims(-2));
    const squares = outer.reshape([...x.shape.slice(0, -1), features * features]);
    return tf.concat(
      [
        tf.onesLike(x.slice(Array(x.rank).fill(0), [...x.shape.slice(0, -1), 1])),
        x.div(features ** 0.25),
        squares.div(Math.SQRT2 * Math.sqrt(features)),
      ],
      -1,
    );
  });
}

export const basedBlock: BlockDefinition<BasedConfig> = {
  name: 'based',
  description: 'Based: Taylor-feature (2nd order) linear attention after a short causal convolution.',
  schema: basedSchema,
  create({ dModel, params }, config): Mixer<BasedState> {
    const { feature_dim: features, heads, conv_size: taps, eps } = config;
    if (dModel % heads !== 0) throw new Error(`based: d_model ${dModel} is not divisible by heads ${heads}`);
    const headDim = dModel / heads;
    const featureCount = 1 + features + features * features;
    const convWeight = params.create('conv.weight', [dModel, taps], fanInUniformInit(taps), { decay: false });
    const convBias = params.create('conv.bias', [dModel], constantInit(0));
    const qProj = params.create('q_proj.weight', [heads * features, dModel], fanInUniformInit(dModel));
    const kProj = params.create('k_proj.weight', [heads * features, dModel], fanInUniformInit(dModel));
    const vProj = params.create('v_proj.weight', [dModel, dModel], fanInUniformInit(dModel));
    const outProj = params.create('out_proj.weight', [dModel, dModel], fanInUniformInit(dModel));

    const linear = (x: tf.Tensor, weight: tf.Variable) => {
      const rows = weight.shape[0] as number;
      return matmul(x.reshape([-1, dModel]), weight, false, true).reshape([...x.shape.slice(0, -1), rows]);
    };
    /** [..., heads·width] → [..., heads, width]. */
    const splitHeads = (x: tf.Tensor, width: number) => x.reshape([...x.shape.slice(0, -1), heads, width]);

    return {
      forward: (x) =>
        tf.tidy(() => {
          const [batch, length] = x.shape;
          const padded = tf.pad(x, [
            [0, 0],
            [taps - 1, 0],
            [0, 0],
          ]);
          const tapRows = convWeight.transpose();
          let mixed: tf.Tensor = convBias;
          for (let tap = 0; tap < taps; tap++) {
            mixed = mixed.add(
              padded.slice([0, tap, 0], [batch, length, dModel]).mul(tapRows.slice([tap, 0], [1, dModel])),
            );
          }
          // [B, L, H, ·] → [B, H, L, ·]
          const q = splitHeads(linear(mixed, qProj), features).transpose([0, 2, 1, 3]);
          const k = splitHeads(linear(mixed, kProj), features).transpose([0, 2, 1, 3]);
          const v = splitHeads(linear(mixed, vProj), headDim).transpose([0, 2, 1, 3]);
          const scores = matmul(q, k, false, true).div(Math.sqrt(features));
          const causal = tf.linalg.bandPart(tf.ones([length, length]), -1, 0);
          const weights = scores.square().mul(0.5).add(scores).add(1).mul(causal);
          const numerator = matmul(weights, v);
          const denominator = weights.sum(-1, true).add(eps);
          const y = numerator.div(denominator).transpose([0, 2, 1, 3]).reshape([batch, length, dModel]);
          return linear(y, outProj) as tf.Tensor3D;
        }),
      initState: (batchSize) => ({
        window: tf.zeros([batchSize, taps - 1, dModel]),
        kv: tf.zeros([batchSize, heads, featureCount, headDim]),
        normaliser: tf.zeros([batchSize, heads, featureCount]),
      }),
      step: (x, state) =>
        tf.tidy(() => {
          const [batch] = x.shape;
          const full = tf.concat([state.window, x.reshape([batch, 1, dModel])], 1);
          const mixed = full.mul(convWeight.transpose().expandDims(0)).sum(1).add(convBias);
          const q = taylorFeatures(splitHeads(linear(mixed, qProj), features)); // [B, H, Φ]
          const k = taylorFeatures(splitHeads(linear(mixed, kProj), features));
          const v = splitHeads(linear(mixed, vProj), headDim); // [B, H, D/H]
          const kv = state.kv.add(k.expandDims(-1).mul(v.expandDims(-2))) as tf.Tensor4D;
          const normaliser = state.normaliser.add(k) as tf.Tensor3D;
          const numerator = q.expandDims(-1).mul(kv).sum(2); // [B, H, D/H]
          const denominator = q.mul(normaliser).sum(-1, true).add(eps);
          const y = linear(numerator.div(denominator).reshape([batch, dModel]), outProj) as tf.Tensor2D;
          return {
            y,
            state: { window: full.slice([0, 1, 0], [batch, taps - 1, dModel]) as tf.Tensor3D, kv, normaliser },
          };
        }),
    };
  },
  // What `step` carries: the convolution's window, and per head the running sums of φ(k)⊗v
  // and φ(k) over the Taylor features (1 + F + F² of them), constant in the length.
  stateBytes: (config, { dModel }) => {
    const { feature_dim: features, heads, conv_size: taps } = config;
    const featureCount = 1 + features + features * features;
    return float32State((taps - 1) * dModel + heads * featureCount * (dModel / heads + 1));
  },
  // The parallel form as implemented: causal attention with Taylor weights over the visible
  // keys, (L + 1)/2 on average per query.
  flops: (config, { dModel, seqLen }) => {
    const { feature_dim: features, heads, conv_size: taps } = config;
    const keys = (seqLen + 1) / 2;
    return sumFlops(
      depthwiseConvFlops(dModel, taps),
      scaleFlops(linearFlops(dModel, heads * features), 2), // q, k
      scaleFlops(linearFlops(dModel, dModel), 2), // v, out
      scaleFlops(linearFlops(features, 1), heads * keys), // S = q·k
      pointwiseFlops(5 * heads * keys), // scale, 1 + S + S²/2, mask
      scaleFlops(linearFlops(keys, dModel / heads), heads), // weights · v
      pointwiseFlops(heads * keys + 2 * dModel), // normaliser sum, ε, division
    );
  },
};
