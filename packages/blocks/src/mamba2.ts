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
  type Initializer,
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
import { causalDepthwiseConv1d, causalDepthwiseConv1dStep } from './ops/causal-depthwise-conv.js';
import {
  broadcastAlong,
  chunkedGatedLinearAttention,
  chunkedLinearAttentionFlops,
  gatedLinearAttentionStep,
} from './ops/chunked-linear-attention.js';
import { linear } from './ops/linear.js';

/**
 * Mamba-2's SSD layer (Dao & Gu 2024), docs/design.md#mamba-2: parameter names, layouts and
 * initialisation of state-spaces/mamba's `Mamba2Simple` (`mamba_ssm/modules/mamba2_simple.py`).
 * The scan is SSD's chunked form: a masked matmul inside each chunk and a recurrence of the
 * [headdim, d_state] states across chunks (ops/chunked-linear-attention.ts).
 */
export const mamba2Schema = z
  .strictObject({
    d_state: z.number().int().positive().default(64),
    d_conv: z.number().int().min(1).default(4),
    expand: z.number().int().positive().default(2),
    /** P: channels per head; heads = expand·d_model / headdim. */
    headdim: z.number().int().positive().default(128),
    /** Groups sharing one B and C (as keys/queries are shared in multi-query attention). */
    ngroups: z.number().int().positive().default(1),
    /** A = −exp(A_log) starts at −U(A_init_range). */
    A_init_range: z
      .tuple([z.number().positive(), z.number().positive()])
      .default([1, 16])
      .refine(([low, high]) => low <= high, { message: 'A_init_range must be [low, high] with low ≤ high' }),
    dt_min: z.number().positive().default(0.001),
    dt_max: z.number().positive().default(0.1),
    dt_init_floor: z.number().positive().default(1e-4),
    /** Tokens per chunk of the chunked scan; changes the speed, not the result. */
    chunk_size: z.number().int().positive().default(64),
  })
  .refine((config) => config.dt_min <= config.dt_max, { message: 'dt_min must not exceed dt_max', path: ['dt_min'] });

export type Mamba2Config = z.infer<typeof mamba2Schema>;

/** The gated RMSNorm's ε (`RMSNormGated(d_inner, eps=1e-5)` in the reference). */
const NORM_EPS = 1e-5;

interface Mamba2State extends MixerState {
  /** The last d_conv − 1 inputs of the convolution over x, B, C: [B, d_conv − 1, E + 2GN]. */
  conv: tf.Tensor3D;
  /** The SSM state per head as keys × values, [B, H, d_state, headdim] (the reference's [P, N] transposed). */
  ssm: tf.Tensor4D;
}

/** Δ₀ ~ exp(U(log dt_min, log dt_max)), floored, stored as its inverse softplus (as Mamba). */
function dtBiasInit(config: Mamba2Config): Initializer {
  return (rng, shape) =>
    Float32Array.from({ length: shape[0] as number }, () => {
      const dt = Math.max(
        Math.exp(rng.uniform(Math.log(config.dt_min), Math.log(config.dt_max))),
        config.dt_init_floor,
      );
      return dt + Math.log(-Math.expm1(-dt));
    });
}

interface Dimensions {
  readonly inner: number;
  readonly heads: number;
  readonly groupWidth: number;
  readonly convChannels: number;
}

function dimensionsOf(config: Mamba2Config, dModel: number): Dimensions {
  const inner = config.expand * dModel;
  if (inner % config.headdim !== 0) {
    throw new InterleaveError(`mamba2: headdim (${config.headdim}) must divide expand·d_model (${inner})`);
  }
  const heads = inner / config.headdim;
  if (heads % config.ngroups !== 0) {
    throw new InterleaveError(`mamba2: ngroups (${config.ngroups}) must divide the number of heads (${heads})`);
  }
  const groupWidth = config.ngroups * config.d_state;
  return { inner, heads, groupWidth, convChannels: inner + 2 * groupWidth };
}

class Mamba2Mixer implements Mixer<Mamba2State> {
  private readonly dims: Dimensions;
  private readonly inProj: tf.Variable;
  private readonly convWeight: tf.Variable;
  private readonly convBias: tf.Variable;
  private readonly dtBias: tf.Variable;
  private readonly aLog: tf.Variable;
  private readonly skip: tf.Variable;
  private readonly normWeight: tf.Variable;
  private readonly outProj: tf.Variable;

  constructor(
    { dModel, params }: BlockContext,
    private readonly config: Mamba2Config,
  ) {
    this.dims = dimensionsOf(config, dModel);
    const { inner, heads, convChannels } = this.dims;
    const [aLow, aHigh] = config.A_init_range;
    // Order of the projection's rows: [z, x, B, C, dt].
    this.inProj = params.create('in_proj.weight', [inner + convChannels + heads, dModel], fanInUniformInit(dModel));
    this.convWeight = params.create('conv1d.weight', [convChannels, 1, config.d_conv], fanInUniformInit(config.d_conv));
    this.convBias = params.create('conv1d.bias', [convChannels], fanInUniformInit(config.d_conv));
    this.dtBias = params.create('dt_bias', [heads], dtBiasInit(config), { decay: false });
    const aLogInit: Initializer = (rng, shape) =>
      Float32Array.from({ length: shape[0] as number }, () => Math.log(rng.uniform(aLow, aHigh)));
    this.aLog = params.create('A_log', [heads], aLogInit, { decay: false });
    this.skip = params.create('D', [heads], constantInit(1), { decay: false });
    this.normWeight = params.create('norm.weight', [inner], constantInit(1), { decay: false });
    this.outProj = params.create('out_proj.weight', [dModel, inner], fanInUniformInit(inner));
  }

  forward(u: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const [batch, length] = u.shape;
      const { inner, heads, groupWidth, convChannels } = this.dims;
      const { headdim } = this.config;
      const [z, xbcIn, dtIn] = tf.split(linear(u, this.inProj), [inner, convChannels, heads], 2) as tf.Tensor3D[];
      const dt = tf.softplus((dtIn as tf.Tensor3D).add(this.dtBias)) as tf.Tensor3D; // [B, L, H]
      const xbc = silu(
        causalDepthwiseConv1d(xbcIn as tf.Tensor3D, this.convWeight as tf.Tensor3D, this.convBias as tf.Tensor1D),
      );
      const [x, b, c] = tf.split(xbc, [inner, groupWidth, groupWidth], 2) as tf.Tensor3D[];
      const perHead = (t: tf.Tensor, width: number) =>
        t.reshape([batch, length, heads, width]).transpose([0, 2, 1, 3]) as tf.Tensor4D;
      const xHeads = perHead(x as tf.Tensor3D, headdim); // [B, H, L, P]
      const dtHeads = dt.transpose([0, 2, 1]) as tf.Tensor3D; // [B, H, L]
      const y = chunkedGatedLinearAttention(
        {
          queries: this.groupsToHeads(c as tf.Tensor3D, batch, length),
          keys: this.groupsToHeads(b as tf.Tensor3D, batch, length),
          values: xHeads.mul(dtHeads.expandDims(3)) as tf.Tensor4D,
          logDecay: dtHeads.mul(this.decayRate().reshape([1, heads, 1])) as tf.Tensor3D,
        },
        this.config.chunk_size,
      ).add(xHeads.mul(this.skip.reshape([1, heads, 1, 1]))); // + D·x
      const merged = y.transpose([0, 2, 1, 3]).reshape([batch, length, inner]) as tf.Tensor3D;
      return linear(this.gatedNorm(merged, z as tf.Tensor3D), this.outProj);
    });
  }

  initState(batchSize: number): Mamba2State {
    const { heads, convChannels } = this.dims;
    return {
      conv: tf.zeros([batchSize, this.config.d_conv - 1, convChannels]),
      ssm: tf.zeros([batchSize, heads, this.config.d_state, this.config.headdim]),
    };
  }

  step(u: tf.Tensor2D, state: Mamba2State): { y: tf.Tensor2D; state: Mamba2State } {
    return tf.tidy(() => {
      const [batch] = u.shape;
      const { inner, heads, groupWidth, convChannels } = this.dims;
      const { headdim, d_state: dState, ngroups } = this.config;
      const [z, xbcIn, dtIn] = tf.split(linear(u, this.inProj), [inner, convChannels, heads], 1) as tf.Tensor2D[];
      const dt = tf.softplus((dtIn as tf.Tensor2D).add(this.dtBias)) as tf.Tensor2D; // [B, H]
      const conv = causalDepthwiseConv1dStep(
        xbcIn as tf.Tensor2D,
        state.conv,
        this.convWeight as tf.Tensor3D,
        this.convBias as tf.Tensor1D,
      );
      const [x, b, c] = tf.split(silu(conv.y), [inner, groupWidth, groupWidth], 1) as tf.Tensor2D[];
      const xHeads = (x as tf.Tensor2D).reshape([batch, heads, headdim]) as tf.Tensor3D;
      const toHeads = (t: tf.Tensor2D) =>
        broadcastAlong(t.reshape([batch, ngroups, 1, dState]), [batch, ngroups, heads / ngroups, dState]).reshape([
          batch,
          heads,
          dState,
        ]) as tf.Tensor3D;
      const result = gatedLinearAttentionStep(state.ssm, {
        queries: toHeads(c as tf.Tensor2D),
        keys: toHeads(b as tf.Tensor2D),
        values: xHeads.mul(dt.expandDims(2)) as tf.Tensor3D,
        logDecay: dt.mul(this.decayRate()) as tf.Tensor2D,
      });
      const y = result.output.add(xHeads.mul(this.skip.reshape([1, heads, 1]))).reshape([batch, inner]) as tf.Tensor2D;
      return {
        y: linear(this.gatedNorm(y, z as tf.Tensor2D), this.outProj),
        state: { conv: conv.window, ssm: result.state },
      };
    });
  }

  /** A = −exp(A_log), one rate per head. */
  private decayRate(): tf.Tensor {
    return tf.exp(this.aLog).neg();
  }

  /** [B, L, G·N] → [B, H, L, N]: each head reads its group's B (or C). */
  private groupsToHeads(t: tf.Tensor3D, batch: number, length: number): tf.Tensor4D {
    const { ngroups, d_state: dState } = this.config;
    const { heads } = this.dims;
    const perGroup = t
      .reshape([batch, length, ngroups, dState])
      .transpose([0, 2, 1, 3])
      .reshape([batch, ngroups, 1, length * dState]);
    return broadcastAlong(perGroup, [batch, ngroups, heads / ngroups, length * dState]).reshape([
      batch,
      heads,
      length,
      dState,
    ]) as tf.Tensor4D;
  }

  /** RMSNormGated with norm_before_gate=False: rmsnorm(y ⊙ silu(z)) ⊙ weight over E. */
  private gatedNorm<T extends tf.Tensor2D | tf.Tensor3D>(y: T, z: T): T {
    const gated = y.mul(silu(z));
    return gated.mul(tf.rsqrt(gated.square().mean(-1, true).add(NORM_EPS))).mul(this.normWeight) as T;
  }
}

/**
 * FLOPs per token (conventions in core's flop-count.ts), term by term as `forward` runs:
 * in_proj, conv1d, SiLU, softplus(dt + bias), Δ·x and Δ·A, the chunked scan, the D skip, the
 * gated RMSNorm, out_proj. The scan is counted as the chunked algorithm computes it.
 */
function mamba2Flops(config: Mamba2Config, { dModel, seqLen }: FlopShape): FlopCount {
  const { inner, heads, convChannels } = dimensionsOf(config, dModel);
  return sumFlops(
    linearFlops(dModel, inner + convChannels + heads), // in_proj → z, xBC, dt
    depthwiseConvFlops(convChannels, config.d_conv),
    pointwiseFlops(ACTIVATION_OPS.silu * convChannels),
    pointwiseFlops((1 + ACTIVATION_OPS.softplus) * heads + inner + 2 * heads), // dt, Δ·x, Δ·A and exp(A_log)
    chunkedLinearAttentionFlops({
      heads,
      keyDim: config.d_state,
      valueDim: config.headdim,
      chunk: Math.min(config.chunk_size, seqLen),
      perFeatureDecay: false,
    }),
    pointwiseFlops(2 * inner), // + D ⊙ x
    pointwiseFlops((ACTIVATION_OPS.silu + 1) * inner + 4 * inner + 3), // y ⊙ silu(z), RMSNorm
    linearFlops(inner, dModel), // out_proj
  );
}

export const mamba2Block: BlockDefinition<Mamba2Config> = {
  name: 'mamba2',
  description: 'Mamba-2 state-space duality (SSD) mixer, chunked (Dao & Gu 2024)',
  schema: mamba2Schema,
  create: (context, config) => new Mamba2Mixer(context, config),
  flops: mamba2Flops,
  // The conv window over x, B and C, and the state [heads, d_state, headdim].
  stateBytes: (config, { dModel }) => {
    const { heads, convChannels } = dimensionsOf(config, dModel);
    return float32State((config.d_conv - 1) * convChannels + heads * config.d_state * config.headdim);
  },
};
