import {
  ACTIVATION_OPS,
  type BlockContext,
  type BlockDefinition,
  constantInit,
  depthwiseConvFlops,
  type FlopCount,
  type FlopShape,
  fanInUniformInit,
  float32State,
  InterleaveError,
  linearFlops,
  type Mixer,
  type MixerState,
  type ParameterScope,
  pointwiseFlops,
  type StateSize,
  sumFlops,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { silu } from './ops/activations.js';
import { causalDepthwiseConv1d, causalDepthwiseConv1dStep } from './ops/causal-depthwise-conv.js';
import { chunkedDeltaRule, deltaRuleFlops, deltaRuleStep } from './ops/chunked-delta-rule.js';
import { linear } from './ops/linear.js';

/**
 * DeltaNet (Schlag et al. 2021; Yang et al. 2024, parallelised), docs/design.md#deltanet:
 * parameter names, layouts and defaults of fla-org/flash-linear-attention's `DeltaNet` layer
 * (`fla/layers/delta_net.py`) with its default feature path (SiLU after short convolutions on
 * q, k, v; L2-normalised q and k; β = sigmoid(b_proj x)), run in the chunked WY form of
 * ops/chunked-delta-rule.ts. `GatedDeltaNet` (gated_deltanet.ts) reuses the mixer below with a
 * decay.
 */
const powerOfTwo = z
  .number()
  .int()
  .positive()
  .refine((n) => (n & (n - 1)) === 0, { message: 'chunk_size must be a power of two' });

/** Keys both delta-rule blocks share, with fla's defaults. */
export const deltaRuleKeys = {
  heads: z.number().int().positive().default(4),
  /** Short causal convolutions (then SiLU) on q, k and v. */
  use_short_conv: z.boolean().default(true),
  conv_size: z.number().int().min(1).default(4),
  conv_bias: z.boolean().default(false),
  /** β ∈ (0, 2) instead of (0, 1): the transition I − βkkᵀ may then have a negative eigenvalue. */
  allow_neg_eigval: z.boolean().default(false),
  norm_eps: z.number().positive().default(1e-5),
  /** Tokens per chunk of the WY form (a power of two); changes the speed, not the result. */
  chunk_size: powerOfTwo.default(16),
};

export const deltanetSchema = z.strictObject({
  ...deltaRuleKeys,
  expand_k: z.number().positive().default(1),
  expand_v: z.number().positive().default(1),
  /** β = sigmoid(b_proj x); false: β = 1. */
  use_beta: z.boolean().default(true),
  /** An output gate: rmsnorm(o) ⊙ weight ⊙ silu(g_proj x). */
  use_gate: z.boolean().default(false),
});

export type DeltaNetConfig = z.infer<typeof deltanetSchema>;

/** What the shared mixer needs: the widths, the switches, and an optional log-decay. */
export interface DeltaRuleLayout {
  readonly heads: number;
  readonly headKeyDim: number;
  readonly headValueDim: number;
  readonly useBeta: boolean;
  readonly useGate: boolean;
  readonly useShortConv: boolean;
  readonly convSize: number;
  readonly convBias: boolean;
  readonly allowNegativeEigenvalues: boolean;
  readonly normEps: number;
  readonly chunkSize: number;
}

/** log α_t [.., H] from the layer input [.., D] (Gated DeltaNet), created after the common parameters. */
export interface DecayGate {
  logDecay<T extends tf.Tensor>(x: T): T;
}

interface DeltaRuleState extends MixerState {
  /** The last conv_size − 1 projections q, k, v (concatenated), [B, conv_size − 1, 2K + V]. */
  conv: tf.Tensor3D;
  /** Per head, keys × values: [B, H, d_k, d_v]. */
  memory: tf.Tensor4D;
}

/** fla's l2norm: x / sqrt(Σx² + 1e-6) over the head's features. */
const L2_EPS = 1e-6;

/** The delta-rule mixer both blocks build: projections, short convs, the rule, norm, output. */
export class DeltaRuleMixer implements Mixer<DeltaRuleState> {
  private readonly keyDim: number;
  private readonly valueDim: number;
  private readonly qProj: tf.Variable;
  private readonly kProj: tf.Variable;
  private readonly vProj: tf.Variable;
  private readonly bProj: tf.Variable | undefined;
  private readonly convWeights: tf.Variable[] = [];
  private readonly convBiases: tf.Variable[] = [];
  private readonly gProj: tf.Variable | undefined;
  private readonly normWeight: tf.Variable;
  private readonly oProj: tf.Variable;
  private readonly gate: DecayGate | undefined;

  /** `createGate` makes the decay's parameters (names in order after b_proj, as fla creates them). */
  constructor(
    dModel: number,
    params: ParameterScope,
    private readonly layout: DeltaRuleLayout,
    createGate?: () => DecayGate,
  ) {
    const { heads, headKeyDim, headValueDim } = layout;
    this.keyDim = heads * headKeyDim;
    this.valueDim = heads * headValueDim;
    const init = fanInUniformInit(dModel);
    this.qProj = params.create('q_proj.weight', [this.keyDim, dModel], init);
    this.kProj = params.create('k_proj.weight', [this.keyDim, dModel], init);
    this.vProj = params.create('v_proj.weight', [this.valueDim, dModel], init);
    this.gate = createGate?.();
    if (layout.useBeta) this.bProj = params.create('b_proj.weight', [heads, dModel], init);
    if (layout.useShortConv) {
      for (const [name, width] of [
        ['q_conv1d', this.keyDim],
        ['k_conv1d', this.keyDim],
        ['v_conv1d', this.valueDim],
      ] as const) {
        const convInit = fanInUniformInit(layout.convSize);
        this.convWeights.push(params.create(`${name}.weight`, [width, 1, layout.convSize], convInit));
        if (layout.convBias) this.convBiases.push(params.create(`${name}.bias`, [width], convInit));
      }
    }
    if (layout.useGate) this.gProj = params.create('g_proj.weight', [this.valueDim, dModel], init);
    this.normWeight = params.create('o_norm.weight', [headValueDim], constantInit(1), { decay: false });
    this.oProj = params.create('o_proj.weight', [dModel, this.valueDim], fanInUniformInit(this.valueDim));
  }

  forward(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const [batch, length] = x.shape;
      const { heads, headKeyDim, headValueDim } = this.layout;
      const projected = this.project(x);
      const features = silu(
        this.layout.useShortConv ? causalDepthwiseConv1d(projected, this.convWeight(), this.convBias()) : projected,
      );
      const [q, k, v] = tf.split(features, [this.keyDim, this.keyDim, this.valueDim], 2);
      const split = (t: tf.Tensor, width: number) =>
        t.reshape([batch, length, heads, width]).transpose([0, 2, 1, 3]) as tf.Tensor4D;
      const toHeads = (t: tf.Tensor) => t.transpose([0, 2, 1]) as tf.Tensor3D; // [B, L, H] → [B, H, L]
      const o = chunkedDeltaRule(
        {
          queries: this.normalize(split(q as tf.Tensor, headKeyDim)).mul(headKeyDim ** -0.5) as tf.Tensor4D,
          keys: this.normalize(split(k as tf.Tensor, headKeyDim)),
          values: split(v as tf.Tensor, headValueDim),
          beta: toHeads(this.beta(x, [batch, length, heads])),
          ...(this.gate === undefined ? {} : { logDecay: toHeads(this.gate.logDecay(x)) }),
        },
        this.layout.chunkSize,
      );
      const perToken = o.transpose([0, 2, 1, 3]); // [B, L, H, d_v]
      const normed = this.outputNorm(perToken, x, [batch, length, heads, headValueDim]);
      return linear(normed.reshape([batch, length, this.valueDim]) as tf.Tensor3D, this.oProj);
    });
  }

  initState(batchSize: number): DeltaRuleState {
    const { heads, headKeyDim, headValueDim, convSize } = this.layout;
    const window = this.layout.useShortConv ? convSize - 1 : 0;
    return {
      conv: tf.zeros([batchSize, window, 2 * this.keyDim + this.valueDim]),
      memory: tf.zeros([batchSize, heads, headKeyDim, headValueDim]),
    };
  }

  step(x: tf.Tensor2D, state: DeltaRuleState): { y: tf.Tensor2D; state: DeltaRuleState } {
    return tf.tidy(() => {
      const [batch] = x.shape;
      const { heads, headKeyDim, headValueDim } = this.layout;
      const projected = this.project(x);
      let conv = { y: projected, window: tf.clone(state.conv) as tf.Tensor3D };
      if (this.layout.useShortConv) {
        conv = causalDepthwiseConv1dStep(projected, state.conv, this.convWeight(), this.convBias());
      }
      const [q, k, v] = tf.split(silu(conv.y), [this.keyDim, this.keyDim, this.valueDim], 1);
      const split = (t: tf.Tensor, width: number) => t.reshape([batch, heads, width]) as tf.Tensor3D;
      const result = deltaRuleStep(state.memory, {
        queries: this.normalize(split(q as tf.Tensor, headKeyDim)).mul(headKeyDim ** -0.5) as tf.Tensor3D,
        keys: this.normalize(split(k as tf.Tensor, headKeyDim)),
        values: split(v as tf.Tensor, headValueDim),
        beta: this.beta(x, [batch, heads]) as tf.Tensor2D,
        ...(this.gate === undefined ? {} : { logDecay: this.gate.logDecay(x) }),
      });
      const normed = this.outputNorm(result.output, x, [batch, heads, headValueDim]);
      return {
        y: linear(normed.reshape([batch, this.valueDim]) as tf.Tensor2D, this.oProj),
        state: { conv: conv.window, memory: result.state },
      };
    });
  }

  /** [q_proj x, k_proj x, v_proj x] concatenated: one convolution serves all three. */
  private project<T extends tf.Tensor2D | tf.Tensor3D>(x: T): T {
    const axis = x.rank - 1;
    return tf.concat([linear(x, this.qProj), linear(x, this.kProj), linear(x, this.vProj)], axis) as T;
  }

  private convWeight(): tf.Tensor3D {
    return tf.concat(this.convWeights, 0) as tf.Tensor3D;
  }

  private convBias(): tf.Tensor1D | undefined {
    return this.layout.convBias ? (tf.concat(this.convBiases, 0) as tf.Tensor1D) : undefined;
  }

  private normalize<T extends tf.Tensor>(t: T): T {
    return t.mul(tf.rsqrt(t.square().sum(-1, true).add(L2_EPS))) as T;
  }

  /** β per token and head, shaped as `shape` (…, H). */
  private beta(x: tf.Tensor, shape: number[]): tf.Tensor {
    if (this.bProj === undefined) return tf.ones(shape);
    const beta = tf.sigmoid(linear(x, this.bProj)).reshape(shape);
    return this.layout.allowNegativeEigenvalues ? beta.mul(2) : beta;
  }

  /** o_norm: RMSNorm per head (⊙ silu(g_proj x) with the output gate). */
  private outputNorm(o: tf.Tensor, x: tf.Tensor, shape: number[]): tf.Tensor {
    const normed = o.mul(tf.rsqrt(o.square().mean(-1, true).add(this.layout.normEps))).mul(this.normWeight);
    return this.gProj === undefined ? normed : normed.mul(silu(linear(x, this.gProj).reshape(shape)));
  }
}

/** The short-conv window over q, k and v (when on) and the memory [heads, d_k, d_v]. */
export function deltaRuleStateBytes(layout: DeltaRuleLayout): StateSize {
  const { heads, headKeyDim, headValueDim } = layout;
  const window = layout.useShortConv ? layout.convSize - 1 : 0;
  return float32State(window * heads * (2 * headKeyDim + headValueDim) + heads * headKeyDim * headValueDim);
}

function deltanetLayout(config: DeltaNetConfig, dModel: number): DeltaRuleLayout {
  const keyDim = Math.trunc(dModel * config.expand_k);
  const valueDim = Math.trunc(dModel * config.expand_v);
  for (const [name, width] of [
    ['key', keyDim],
    ['value', valueDim],
  ] as const) {
    if (width < config.heads || width % config.heads !== 0) {
      throw new InterleaveError(
        `deltanet: the ${name} width (${width}) must be a positive multiple of heads (${config.heads})`,
      );
    }
  }
  return {
    heads: config.heads,
    headKeyDim: keyDim / config.heads,
    headValueDim: valueDim / config.heads,
    useBeta: config.use_beta,
    useGate: config.use_gate,
    useShortConv: config.use_short_conv,
    convSize: config.conv_size,
    convBias: config.conv_bias,
    allowNegativeEigenvalues: config.allow_neg_eigval,
    normEps: config.norm_eps,
    chunkSize: config.chunk_size,
  };
}

/**
 * FLOPs per token shared by both delta-rule blocks (conventions in core's flop-count.ts): the
 * q/k/v (and b, g) projections, the short convolutions and SiLU, the L2 norms and q scale, the
 * chunked rule, the per-head RMSNorm (and gate), o_proj. `extra` adds a block's own terms.
 */
export function deltaRuleLayerFlops(
  layout: DeltaRuleLayout,
  { dModel, seqLen }: FlopShape,
  extra: FlopCount = { forward: 0, backward: 0 },
): FlopCount {
  const { heads, headKeyDim, headValueDim } = layout;
  const keyDim = heads * headKeyDim;
  const valueDim = heads * headValueDim;
  const channels = 2 * keyDim + valueDim;
  return sumFlops(
    linearFlops(dModel, channels), // q, k, v
    layout.useBeta ? linearFlops(dModel, heads) : { forward: 0, backward: 0 },
    pointwiseFlops(layout.useBeta ? ACTIVATION_OPS.sigmoid * heads : 0),
    layout.useShortConv ? depthwiseConvFlops(channels, layout.convSize, layout.convBias) : { forward: 0, backward: 0 },
    pointwiseFlops(ACTIVATION_OPS.silu * channels),
    pointwiseFlops(2 * (3 * keyDim + 2 * heads) + keyDim), // two L2 norms, q scale
    deltaRuleFlops({ heads, keyDim: headKeyDim, valueDim: headValueDim, chunk: layout.chunkSize }, seqLen),
    pointwiseFlops(4 * valueDim + 3 * heads), // RMSNorm per head
    layout.useGate
      ? sumFlops(linearFlops(dModel, valueDim), pointwiseFlops((ACTIVATION_OPS.silu + 1) * valueDim))
      : { forward: 0, backward: 0 },
    linearFlops(valueDim, dModel), // o_proj
    extra,
  );
}

export const deltanetBlock: BlockDefinition<DeltaNetConfig> = {
  name: 'deltanet',
  description: 'DeltaNet: linear attention with the delta rule, chunked WY form (Yang et al. 2024)',
  schema: deltanetSchema,
  create: ({ dModel, params }: BlockContext, config) =>
    new DeltaRuleMixer(dModel, params, deltanetLayout(config, dModel)),
  flops: (config, shape) => deltaRuleLayerFlops(deltanetLayout(config, shape.dModel), shape),
  stateBytes: (config, { dModel }) => deltaRuleStateBytes(deltanetLayout(config, dModel)),
};
