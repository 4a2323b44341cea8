import {
  ACTIVATION_OPS,
  type BlockDefinition,
  fanInUniformInit,
  type Initializer,
  InterleaveError,
  linearFlops,
  pointwiseFlops,
  sumFlops,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import {
  type DecayGate,
  type DeltaRuleLayout,
  DeltaRuleMixer,
  deltaRuleKeys,
  deltaRuleLayerFlops,
  deltaRuleStateBytes,
} from './deltanet.js';
import { linear } from './ops/linear.js';

/**
 * Gated DeltaNet (Yang, Kautz & Hatamizadeh 2025), docs/design.md#gated-deltanet: the delta rule
 * with a Mamba-2-style decay α_t = exp(−exp(A_log)·softplus(a_proj x + dt_bias)) per head,
 * S_t = α_t (I − β_t k_t k_tᵀ) S_{t−1} + β_t k_t v_tᵀ. Parameter names, layouts, defaults and
 * initialisation of fla-org/flash-linear-attention's `GatedDeltaNet` layer
 * (`fla/layers/gated_deltanet.py`): output gate and short convolutions on by default.
 */
export const gatedDeltanetSchema = z.strictObject({
  ...deltaRuleKeys,
  /** d_k per head; `auto` = round(0.75·d_model / heads), the reference's sizing rule. */
  head_dim: z.union([z.literal('auto'), z.number().int().positive()]).default('auto'),
  /** d_v per head = expand_v · head_dim. */
  expand_v: z.number().positive().default(2),
  /** An output gate: rmsnorm(o) ⊙ weight ⊙ silu(g_proj x). */
  use_gate: z.boolean().default(true),
});

export type GatedDeltaNetConfig = z.infer<typeof gatedDeltanetSchema>;

/** The reference hard-codes the dt range of its decay's bias. */
const DT_MIN = 0.001;
const DT_MAX = 0.1;
const DT_INIT_FLOOR = 1e-4;
/** A ~ U(0, 16) as in the reference; drawn from (0, 16] so that log A stays finite. */
const A_MAX = 16;

function gatedLayout(config: GatedDeltaNetConfig, dModel: number): DeltaRuleLayout {
  const headKeyDim =
    config.head_dim === 'auto' ? Math.max(1, Math.round((0.75 * dModel) / config.heads)) : config.head_dim;
  const headValueDim = headKeyDim * config.expand_v;
  if (!Number.isInteger(headValueDim)) {
    throw new InterleaveError(
      `gated_deltanet: expand_v (${config.expand_v}) · head_dim (${headKeyDim}) must be an integer`,
    );
  }
  return {
    heads: config.heads,
    headKeyDim,
    headValueDim,
    useBeta: true,
    useGate: config.use_gate,
    useShortConv: config.use_short_conv,
    convSize: config.conv_size,
    convBias: config.conv_bias,
    allowNegativeEigenvalues: config.allow_neg_eigval,
    normEps: config.norm_eps,
    chunkSize: config.chunk_size,
  };
}

const dtBiasInit: Initializer = (rng, shape) =>
  Float32Array.from({ length: shape[0] as number }, () => {
    const dt = Math.max(Math.exp(rng.uniform(Math.log(DT_MIN), Math.log(DT_MAX))), DT_INIT_FLOOR);
    return dt + Math.log(-Math.expm1(-dt));
  });

const aLogInit: Initializer = (rng, shape) =>
  Float32Array.from({ length: shape[0] as number }, () => Math.log(A_MAX - rng.uniform(0, A_MAX)));

export const gatedDeltanetBlock: BlockDefinition<GatedDeltaNetConfig> = {
  name: 'gated_deltanet',
  description: 'Gated DeltaNet: the delta rule with a per-head decay, chunked WY form (Yang et al. 2025)',
  schema: gatedDeltanetSchema,
  create: ({ dModel, params }, config) => {
    const layout = gatedLayout(config, dModel);
    const createGate = (): DecayGate => {
      const aProj = params.create('a_proj.weight', [layout.heads, dModel], fanInUniformInit(dModel));
      const aLog = params.create('A_log', [layout.heads], aLogInit, { decay: false });
      const dtBias = params.create('dt_bias', [layout.heads], dtBiasInit, { decay: false });
      return {
        // log α = −exp(A_log) · softplus(a_proj x + dt_bias), one per head.
        logDecay: <T extends tf.Tensor>(x: T): T =>
          tf.tidy(() => tf.softplus(linear(x, aProj).add(dtBias)).mul(tf.exp(aLog).neg()) as T),
      };
    };
    return new DeltaRuleMixer(dModel, params, layout, createGate);
  },
  // The decay: a_proj, + dt_bias, softplus, · −exp(A_log).
  flops: (config, shape) => {
    const layout = gatedLayout(config, shape.dModel);
    const extra = sumFlops(
      linearFlops(shape.dModel, layout.heads),
      pointwiseFlops((2 + ACTIVATION_OPS.softplus) * layout.heads),
    );
    return deltaRuleLayerFlops(layout, shape, extra);
  },
  stateBytes: (config, { dModel }) => deltaRuleStateBytes(gatedLayout(config, dModel)),
};
