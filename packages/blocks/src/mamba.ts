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
  indexedInit,
  linearFlops,
  type Mixer,
  type MixerState,
  type ModelDepth,
  pointwiseFlops,
  sumFlops,
  uniformInit,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { silu } from './ops/activations.js';
import { causalDepthwiseConv1d, causalDepthwiseConv1dStep } from './ops/causal-depthwise-conv.js';
import { linear } from './ops/linear.js';
import { selectiveScan } from './scan/selective-scan.js';

/** Mamba (selective SSM), docs/design.md#mamba; parameter names and layouts follow state-spaces/mamba. */
export const mambaSchema = z
  .strictObject({
    d_state: z.number().int().positive().default(16),
    d_conv: z.number().int().min(1).default(4),
    expand: z.number().int().positive().default(2),
    /** `auto` = ceil(d_model / 16). */
    dt_rank: z.union([z.literal('auto'), z.number().int().positive()]).default('auto'),
    dt_min: z.number().positive().default(0.001),
    dt_max: z.number().positive().default(0.1),
    dt_init_floor: z.number().positive().default(1e-4),
  })
  .refine((config) => config.dt_min <= config.dt_max, { message: 'dt_min must not exceed dt_max', path: ['dt_min'] });

export type MambaConfig = z.infer<typeof mambaSchema>;

interface MambaState extends MixerState {
  /** The last d_conv − 1 inputs of the convolution, [B, d_conv − 1, d_inner]. */
  conv: tf.Tensor3D;
  /** The SSM state, [B, d_inner, d_state]. */
  ssm: tf.Tensor3D;
}

/** dt ~ exp(U(log dt_min, log dt_max)), floored, stored as its inverse softplus (docs/design.md#mamba). */
function dtBiasInit(config: MambaConfig): Initializer {
  return (rng, shape) =>
    Float32Array.from({ length: shape[0] as number }, () => {
      const logDt = rng.uniform(Math.log(config.dt_min), Math.log(config.dt_max));
      const dt = Math.max(Math.exp(logDt), config.dt_init_floor);
      return dt + Math.log(-Math.expm1(-dt));
    });
}

/**
 * PyTorch's default Linear init, U(±1/√d_inner); in a model with `depth_scaled_init`, divided by
 * √(residual branches) as mamba_ssm's `_init_weights(rescale_prenorm_residual=True)` does
 * (n_residuals_per_layer · n_layer: one branch per mixer, one more per MLP).
 */
function outProjInit(dInner: number, depth: ModelDepth | undefined): Initializer {
  const bound = 1 / Math.sqrt(dInner) / Math.sqrt(depth?.residualBranches ?? 1);
  return uniformInit(-bound, bound);
}

class MambaMixer implements Mixer<MambaState> {
  private readonly dInner: number;
  private readonly dtRank: number;
  private readonly inProj: tf.Variable;
  private readonly convWeight: tf.Variable;
  private readonly convBias: tf.Variable;
  private readonly xProj: tf.Variable;
  private readonly dtProjWeight: tf.Variable;
  private readonly dtProjBias: tf.Variable;
  private readonly aLog: tf.Variable;
  private readonly skip: tf.Variable;
  private readonly outProj: tf.Variable;

  constructor(
    context: BlockContext,
    private readonly config: MambaConfig,
  ) {
    const { dModel, params } = context;
    const { d_state: dState, d_conv: dConv } = config;
    this.dInner = config.expand * dModel;
    this.dtRank = dtRankOf(config, dModel);
    const dInner = this.dInner;
    this.inProj = params.create('in_proj.weight', [2 * dInner, dModel], fanInUniformInit(dModel));
    this.convWeight = params.create('conv1d.weight', [dInner, 1, dConv], fanInUniformInit(dConv), { decay: true });
    this.convBias = params.create('conv1d.bias', [dInner], fanInUniformInit(dConv));
    this.xProj = params.create('x_proj.weight', [this.dtRank + 2 * dState, dInner], fanInUniformInit(dInner));
    const dtStd = this.dtRank ** -0.5;
    this.dtProjWeight = params.create('dt_proj.weight', [dInner, this.dtRank], uniformInit(-dtStd, dtStd));
    this.dtProjBias = params.create('dt_proj.bias', [dInner], dtBiasInit(config));
    this.aLog = params.create(
      'A_log',
      [dInner, dState],
      indexedInit((index) => Math.log((index % dState) + 1)),
      { decay: false },
    );
    this.skip = params.create('D', [dInner], constantInit(1), { decay: false });
    this.outProj = params.create('out_proj.weight', [dModel, dInner], outProjInit(dInner, context.depth));
  }

  forward(u: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const [xIn, z] = tf.split(linear(u, this.inProj), 2, 2) as [tf.Tensor3D, tf.Tensor3D];
      const x = silu(
        causalDepthwiseConv1d(xIn, this.convWeight as tf.Tensor3D, this.convBias as tf.Tensor1D),
      ) as tf.Tensor3D;
      const { dt, b, c } = this.selectiveParameters(x);
      const a = tf.exp(this.aLog).neg() as tf.Tensor2D; // [d_inner, d_state]
      const y = selectiveScan({ x, dt, a, b, c }).add(x.mul(this.skip)) as tf.Tensor3D;
      return linear(y.mul(silu(z)) as tf.Tensor3D, this.outProj);
    });
  }

  initState(batchSize: number): MambaState {
    return {
      conv: tf.zeros([batchSize, this.config.d_conv - 1, this.dInner]),
      ssm: tf.zeros([batchSize, this.dInner, this.config.d_state]),
    };
  }

  step(u: tf.Tensor2D, state: MambaState): { y: tf.Tensor2D; state: MambaState } {
    return tf.tidy(() => {
      const [xIn, z] = tf.split(linear(u, this.inProj), 2, 1) as [tf.Tensor2D, tf.Tensor2D];
      const conv = causalDepthwiseConv1dStep(
        xIn,
        state.conv,
        this.convWeight as tf.Tensor3D,
        this.convBias as tf.Tensor1D,
      );
      const x = silu(conv.y);
      const { dt, b, c } = this.selectiveParameters(x);
      const a = tf.exp(this.aLog).neg();
      const decay = tf.exp(dt.expandDims(2).mul(a)); // [B, d_inner, d_state]
      const drive = dt.mul(x).expandDims(2).mul(b.expandDims(1));
      const ssm = decay.mul(state.ssm).add(drive) as tf.Tensor3D;
      const y = ssm.mul(c.expandDims(1)).sum(2).add(x.mul(this.skip)) as tf.Tensor2D;
      return { y: linear(y.mul(silu(z)) as tf.Tensor2D, this.outProj), state: { conv: conv.window, ssm } };
    });
  }

  /** Input-dependent Δ (after softplus), B and C: the "selective" part of the SSM. */
  private selectiveParameters<T extends tf.Tensor2D | tf.Tensor3D>(x: T): { dt: T; b: T; c: T } {
    const axis = x.rank - 1;
    const [dtLowRank, b, c] = tf.split(
      linear(x, this.xProj),
      [this.dtRank, this.config.d_state, this.config.d_state],
      axis,
    ) as [T, T, T];
    const dt = tf.softplus(linear(dtLowRank, this.dtProjWeight, this.dtProjBias)) as T;
    return { dt, b, c };
  }
}

function dtRankOf(config: MambaConfig, dModel: number): number {
  return config.dt_rank === 'auto' ? Math.ceil(dModel / 16) : config.dt_rank;
}

/**
 * Per state element (d_inner·d_state of them per token) the scan's forward does exp(Δ·A) (2),
 * decay·h (1), (Δx)·B (1), the add (1) and y += h·C (2); per channel Δ·x (1) once.
 */
const SCAN_FORWARD_OPS_PER_STATE = 7;
/**
 * The scan's reverse-time pass (the fused kernel's formula) per state element:
 * g = gh + dy·C (2), dC += dy·h (2), g·decay·h_{t−1} (2), dΔ += A·that + g·x·B (5),
 * dx += g·Δ·B (3), dB += g·Δ·x (3), dA += Δ·that (2), gh = g·decay (1). A kernel that
 * recomputes the forward states to save memory does more; as with activation checkpointing,
 * that recomputation is not counted.
 */
const SCAN_BACKWARD_OPS_PER_STATE = 20;

/**
 * FLOPs per token (conventions in core's flop-count.ts), term by term as `forward` runs:
 * in_proj, conv1d, SiLU, x_proj, dt_proj, softplus, the selective scan, the D skip, the
 * SiLU(z) gate, out_proj. Independent of the sequence length. The scan is counted as the
 * sequential recurrence (the `ops` parallel scan does log₂ L times that work on GPUs).
 */
function mambaFlops(config: MambaConfig, { dModel }: FlopShape): FlopCount {
  const dInner = config.expand * dModel;
  const dtRank = dtRankOf(config, dModel);
  const dState = config.d_state;
  return sumFlops(
    linearFlops(dModel, 2 * dInner), // in_proj → x, z
    depthwiseConvFlops(dInner, config.d_conv),
    pointwiseFlops(ACTIVATION_OPS.silu * dInner),
    linearFlops(dInner, dtRank + 2 * dState), // x_proj → Δ (low rank), B, C
    linearFlops(dtRank, dInner, true), // dt_proj
    pointwiseFlops(ACTIVATION_OPS.softplus * dInner),
    {
      forward: dInner * (1 + SCAN_FORWARD_OPS_PER_STATE * dState),
      backward: dInner * SCAN_BACKWARD_OPS_PER_STATE * dState,
    },
    pointwiseFlops(2 * dInner), // + D ⊙ x
    pointwiseFlops((ACTIVATION_OPS.silu + 1) * dInner), // ⊙ silu(z)
    linearFlops(dInner, dModel), // out_proj
  );
}

export const mambaBlock: BlockDefinition<MambaConfig> = {
  name: 'mamba',
  description: 'Mamba selective state-space mixer (Gu & Dao 2023)',
  schema: mambaSchema,
  create: (context, config) => new MambaMixer(context, config),
  flops: mambaFlops,
  // The conv window (d_conv − 1 inputs) and h: 4·d_inner·(d_state + d_conv − 1) bytes.
  stateBytes: (config, { dModel }) => float32State(config.expand * dModel * (config.d_state + config.d_conv - 1)),
};
