import {
  ACTIVATION_OPS,
  type BlockContext,
  type BlockDefinition,
  constantInit,
  type FlopCount,
  type FlopShape,
  fanInUniformInit,
  float32State,
  InterleaveError,
  linearFlops,
  type Mixer,
  type MixerState,
  pointwiseFlops,
  sumFlops,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { silu } from './ops/activations.js';
import {
  chunkedGatedLinearAttention,
  chunkedLinearAttentionFlops,
  gatedLinearAttentionStep,
} from './ops/chunked-linear-attention.js';
import { linear } from './ops/linear.js';

/**
 * Gated linear attention (Yang et al. 2024), docs/design.md#gla: parameter names and layouts of
 * fla-org/flash-linear-attention's `GatedLinearAttention` layer (`fla/layers/gla.py`) with its
 * defaults (output gate, fused RMSNorm + swish gate, no short convolution), run in the chunked
 * form of ops/chunked-linear-attention.ts with a decay per key feature.
 */
export const glaSchema = z.strictObject({
  heads: z.number().int().positive().default(4),
  /** key width = round(expand_k · d_model), split over the heads. */
  expand_k: z.number().positive().default(0.5),
  /** value width = round(expand_v · d_model). */
  expand_v: z.number().positive().default(1),
  /** Rank of the two-layer gate projection gk_proj. */
  gate_low_rank_dim: z.number().int().positive().default(16),
  /** log α = logsigmoid(gk_proj(x)) / gate_logit_normalizer. */
  gate_logit_normalizer: z.number().positive().default(16),
  norm_eps: z.number().positive().default(1e-5),
  /** Tokens per chunk of the chunked form; changes the speed, not the result. */
  chunk_size: z.number().int().positive().default(16),
});

export type GlaConfig = z.infer<typeof glaSchema>;

interface GlaState extends MixerState {
  /** Per head, keys × values: [B, H, d_k, d_v]. */
  memory: tf.Tensor4D;
}

interface Widths {
  readonly keyDim: number;
  readonly valueDim: number;
  readonly headKeyDim: number;
  readonly headValueDim: number;
}

function widthsOf(config: GlaConfig, dModel: number): Widths {
  // fla truncates (int(hidden · expand)); the same here.
  const keyDim = Math.trunc(dModel * config.expand_k);
  const valueDim = Math.trunc(dModel * config.expand_v);
  for (const [name, width] of [
    ['key', keyDim],
    ['value', valueDim],
  ] as const) {
    if (width < config.heads || width % config.heads !== 0) {
      throw new InterleaveError(
        `gla: the ${name} width (${width}) must be a positive multiple of heads (${config.heads})`,
      );
    }
  }
  return { keyDim, valueDim, headKeyDim: keyDim / config.heads, headValueDim: valueDim / config.heads };
}

class GlaMixer implements Mixer<GlaState> {
  private readonly widths: Widths;
  private readonly qProj: tf.Variable;
  private readonly kProj: tf.Variable;
  private readonly vProj: tf.Variable;
  private readonly gProj: tf.Variable;
  private readonly gateDown: tf.Variable;
  private readonly gateUp: tf.Variable;
  private readonly gateBias: tf.Variable;
  private readonly normWeight: tf.Variable;
  private readonly oProj: tf.Variable;

  constructor(
    { dModel, params }: BlockContext,
    private readonly config: GlaConfig,
  ) {
    this.widths = widthsOf(config, dModel);
    const { keyDim, valueDim, headValueDim } = this.widths;
    const rank = config.gate_low_rank_dim;
    const init = fanInUniformInit(dModel);
    this.qProj = params.create('q_proj.weight', [keyDim, dModel], init);
    this.kProj = params.create('k_proj.weight', [keyDim, dModel], init);
    this.vProj = params.create('v_proj.weight', [valueDim, dModel], init);
    this.gProj = params.create('g_proj.weight', [valueDim, dModel], init);
    this.gateDown = params.create('gk_proj.0.weight', [rank, dModel], init);
    this.gateUp = params.create('gk_proj.1.weight', [keyDim, rank], fanInUniformInit(rank));
    this.gateBias = params.create('gk_proj.1.bias', [keyDim], fanInUniformInit(rank));
    this.normWeight = params.create('g_norm_swish_gate.weight', [headValueDim], constantInit(1), { decay: false });
    this.oProj = params.create('o_proj.weight', [dModel, valueDim], fanInUniformInit(valueDim));
  }

  forward(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const [batch, length] = x.shape;
      const { heads } = this.config;
      const { headKeyDim, headValueDim, valueDim } = this.widths;
      const split = (t: tf.Tensor, width: number) =>
        t.reshape([batch, length, heads, width]).transpose([0, 2, 1, 3]) as tf.Tensor4D;
      const o = chunkedGatedLinearAttention(
        {
          queries: split(linear(x, this.qProj).mul(headKeyDim ** -0.5), headKeyDim),
          keys: split(linear(x, this.kProj), headKeyDim),
          values: split(linear(x, this.vProj), headValueDim),
          logDecay: split(this.logDecay(x), headKeyDim),
        },
        this.config.chunk_size,
      );
      const heads4 = o.transpose([0, 2, 1, 3]) as tf.Tensor4D; // [B, L, H, d_v]
      const gate = linear(x, this.gProj).reshape([batch, length, heads, headValueDim]);
      const gated = this.normAndGate(heads4, gate).reshape([batch, length, valueDim]) as tf.Tensor3D;
      return linear(gated, this.oProj);
    });
  }

  initState(batchSize: number): GlaState {
    const { headKeyDim, headValueDim } = this.widths;
    return { memory: tf.zeros([batchSize, this.config.heads, headKeyDim, headValueDim]) };
  }

  step(x: tf.Tensor2D, state: GlaState): { y: tf.Tensor2D; state: GlaState } {
    return tf.tidy(() => {
      const [batch] = x.shape;
      const { heads } = this.config;
      const { headKeyDim, headValueDim, valueDim } = this.widths;
      const split = (t: tf.Tensor, width: number) => t.reshape([batch, heads, width]) as tf.Tensor3D;
      const result = gatedLinearAttentionStep(state.memory, {
        queries: split(linear(x, this.qProj).mul(headKeyDim ** -0.5), headKeyDim),
        keys: split(linear(x, this.kProj), headKeyDim),
        values: split(linear(x, this.vProj), headValueDim),
        logDecay: split(this.logDecay(x), headKeyDim),
      });
      const gate = linear(x, this.gProj).reshape([batch, heads, headValueDim]);
      const gated = this.normAndGate(result.output, gate).reshape([batch, valueDim]) as tf.Tensor2D;
      return { y: linear(gated, this.oProj), state: { memory: result.state } };
    });
  }

  /** log α = logsigmoid(gk_proj(x)) / normalizer, per key feature. */
  private logDecay<T extends tf.Tensor>(x: T): T {
    const logits = linear(linear(x, this.gateDown), this.gateUp, this.gateBias);
    // logsigmoid(x) = −softplus(−x); tf.logSigmoid's gradient reads a disposed input on wasm (4.22).
    return tf.softplus(logits.neg()).div(-this.config.gate_logit_normalizer) as T;
  }

  /** FusedRMSNormGated: rmsnorm(o) ⊙ weight ⊙ swish(g), per head over d_v. */
  private normAndGate(o: tf.Tensor, gate: tf.Tensor): tf.Tensor {
    const normed = o.mul(tf.rsqrt(o.square().mean(-1, true).add(this.config.norm_eps)));
    return normed.mul(this.normWeight).mul(silu(gate));
  }
}

/**
 * FLOPs per token (conventions in core's flop-count.ts): the q/k/v/g projections, the low-rank
 * gate and its logsigmoid/normaliser, the q scale, the chunked recurrence (per-feature decay),
 * the per-head RMSNorm and swish gate, o_proj.
 */
function glaFlops(config: GlaConfig, { dModel, seqLen }: FlopShape): FlopCount {
  const { keyDim, valueDim, headKeyDim, headValueDim } = widthsOf(config, dModel);
  const rank = config.gate_low_rank_dim;
  return sumFlops(
    linearFlops(dModel, 2 * keyDim + 2 * valueDim), // q, k, v, g
    linearFlops(dModel, rank),
    linearFlops(rank, keyDim, true), // gk_proj
    pointwiseFlops((ACTIVATION_OPS.softplus + 2) * keyDim + keyDim), // logsigmoid, ÷ normaliser; q scale
    chunkedLinearAttentionFlops({
      heads: config.heads,
      keyDim: headKeyDim,
      valueDim: headValueDim,
      chunk: Math.min(config.chunk_size, seqLen),
      perFeatureDecay: true,
    }),
    pointwiseFlops(4 * valueDim + 3 * config.heads + (ACTIVATION_OPS.silu + 1) * valueDim), // norm, swish gate
    linearFlops(valueDim, dModel), // o_proj
  );
}

export const glaBlock: BlockDefinition<GlaConfig> = {
  name: 'gla',
  description: 'gated linear attention with a per-feature decay, chunked (Yang et al. 2024)',
  schema: glaSchema,
  create: (context, config) => new GlaMixer(context, config),
  flops: glaFlops,
  // The memory [heads, d_k, d_v] per head; GLA has no convolution.
  stateBytes: (config, { dModel }) => {
    const { headKeyDim, headValueDim } = widthsOf(config, dModel);
    return float32State(config.heads * headKeyDim * headValueDim);
  },
};
