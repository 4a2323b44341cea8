import {
  type BlockContext,
  type BlockDefinition,
  depthwiseConvFlops,
  type FlopCount,
  type FlopShape,
  fanInUniformInit,
  float32State,
  InterleaveError,
  linearFlops,
  type Mixer,
  type MixerState,
  pointwiseFlops,
  type StateShape,
  type StateSize,
  scaleFlops,
  sumFlops,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { ImplicitFilter } from './hyena/implicit-filter.js';
import {
  causalLongConvolution,
  type LongConvolutionMethod,
  longConvolutionFlops,
  longConvolutionMethodFor,
} from './hyena/long-convolution.js';
import { causalDepthwiseConv1d, causalDepthwiseConv1dStep } from './ops/causal-depthwise-conv.js';
import { linear } from './ops/linear.js';

/**
 * The Hyena operator (docs/design.md#hyena; Poli et al. 2023), following HazyResearch/safari's
 * `HyenaOperator` with one head, inner_factor 1, no dropout, identity output activation.
 *
 *   x_0 … x_{N−1}, v = split(short_conv(in_proj(u)))        each [B, L, D]; short conv depthwise, causal
 *   z = v
 *   for n = N−1 down to 1:                                   N − 1 long filters h_1 … h_{N−1}
 *     z = x_n ⊙ z
 *     z = h_n * z + bias_n ⊙ z                               * = causal convolution over the sequence
 *   y = out_proj(x_0 ⊙ z)
 *
 * The order of gating is safari's, which differs from the paper's shorthand
 * `z = x_n ⊙ (h_n * z)` for n = 1..N: safari gates *before* each long convolution and closes
 * with one more gate, so an order-N operator has N gates but N − 1 long filters (order 2 is
 * H3's q ⊙ (h * (k ⊙ v))). That is the paper's recurrence with its first long filter taken as
 * the identity, and keeps safari's parameter shapes: filter_fn makes (N − 1)·D channels, and
 * a checkpoint maps onto safari's module. Channel c of filter_fn belongs to stage
 * c mod (N − 1), channel ⌊c / (N − 1)⌋ (safari's `(v o)` layout), and stage o uses gate
 * x_{N−1−o} (safari iterates `reversed(x[1:])`).
 *
 * Long convolution (hyena/long-convolution.ts), chosen when the block is built: on tensorflow,
 * and on webgpu past max_len 512, by FFT (rfft/irfft at size 2L); on wasm (no FFT kernels), cpu
 * (whose FFT is ~50× slower) and webgpu up to max_len 512 (whose FFT kernel is a DFT computing
 * its sines per term) by the same transforms written as dense DFT matmuls. Both exact.
 *
 * Step: the long convolution at position t reads the whole prefix, so the state keeps, per
 * stage, every input that stage's convolution has seen (newest first) and step costs O(t)
 * time and memory per token (plus the filter rows 0..t, recomputed from the parameters). It
 * cannot run past max_len: the filters are defined up to there.
 *
 * Parameters (PyTorch names and layouts, as safari): `in_proj.weight [(N+1)·D, D]`,
 * `in_proj.bias`, `short_filter.weight [(N+1)·D, 1, K]`, `short_filter.bias`,
 * `filter_fn.bias [(N−1)·D]`, `filter_fn.implicit_filter.*` (see hyena/implicit-filter.ts),
 * `out_proj.weight [D, D]`, `out_proj.bias`; PyTorch's default init for the Linear and Conv1d
 * layers.
 */
export const hyenaSchema = z
  .strictObject({
    /** N: gates; the operator has N − 1 long convolutions. */
    order: z.number().int().min(2).default(2),
    /** Width of the implicit filter's FFN. */
    filter_order: z.number().int().positive().default(64),
    /** Features of the positional embedding fed to the FFN: t plus (emb_dim − 1)/2 cos/sin pairs. */
    emb_dim: z
      .number()
      .int()
      .min(3)
      .default(3)
      .refine((value) => value % 2 === 1, { message: 'emb_dim must be odd (time, then cosine/sine pairs)' }),
    /** Hidden Linear→Sin layers of the FFN after the first (safari's num_inner_mlps). */
    num_inner_mlps: z.number().int().min(0).default(2),
    /** Kernel of the depthwise causal convolution after in_proj. */
    short_filter_order: z.number().int().positive().default(3),
    /** The longest sequence the implicit filters are defined for (safari's l_max). */
    max_len: z.number().int().positive().default(2048),
    /** Initial frequency of the FFN's Sin activations (safari's w). */
    sin_freq: z.number().default(1),
    fast_decay_pct: z.number().positive().default(0.3),
    slow_decay_pct: z.number().positive().default(1.5),
    target: z.number().positive().lt(1).default(1e-2),
    shift: z.number().default(0),
  })
  .refine((config) => config.fast_decay_pct <= config.slow_decay_pct, {
    message: 'fast_decay_pct must not exceed slow_decay_pct',
    path: ['fast_decay_pct'],
  });

export type HyenaConfig = z.infer<typeof hyenaSchema>;

interface HyenaState extends MixerState {
  /** The last short_filter_order − 1 inputs of the short convolution, [B, K − 1, (N+1)·D]. */
  conv: tf.Tensor3D;
  /** Per long-convolution stage o ("0", "1", …): its inputs so far, newest first, [B, t, D]. */
  history: { readonly [stage: string]: tf.Tensor3D };
}

class HyenaMixer implements Mixer<HyenaState> {
  private readonly dModel: number;
  private readonly stages: number;
  private readonly method: LongConvolutionMethod;
  private readonly inProjWeight: tf.Variable;
  private readonly inProjBias: tf.Variable;
  private readonly shortWeight: tf.Variable;
  private readonly shortBias: tf.Variable;
  private readonly filter: ImplicitFilter;
  private readonly outProjWeight: tf.Variable;
  private readonly outProjBias: tf.Variable;

  constructor(
    context: BlockContext,
    private readonly config: HyenaConfig,
  ) {
    const { dModel, params } = context;
    const width = (config.order + 1) * dModel;
    const kernel = config.short_filter_order;
    this.dModel = dModel;
    this.stages = config.order - 1;
    this.method = longConvolutionMethodFor(context.backend, config.max_len);
    this.inProjWeight = params.create('in_proj.weight', [width, dModel], fanInUniformInit(dModel));
    this.inProjBias = params.create('in_proj.bias', [width], fanInUniformInit(dModel));
    this.shortWeight = params.create('short_filter.weight', [width, 1, kernel], fanInUniformInit(kernel));
    this.shortBias = params.create('short_filter.bias', [width], fanInUniformInit(kernel));
    this.filter = new ImplicitFilter(params.scope('filter_fn'), {
      channels: this.stages * dModel,
      embDim: config.emb_dim,
      width: config.filter_order,
      innerLayers: config.num_inner_mlps,
      maxLen: config.max_len,
      sinFreq: config.sin_freq,
      fastDecayPct: config.fast_decay_pct,
      slowDecayPct: config.slow_decay_pct,
      target: config.target,
      shift: config.shift,
    });
    this.outProjWeight = params.create('out_proj.weight', [dModel, dModel], fanInUniformInit(dModel));
    this.outProjBias = params.create('out_proj.bias', [dModel], fanInUniformInit(dModel));
  }

  forward(u: tf.Tensor3D): tf.Tensor3D {
    const length = u.shape[1];
    this.checkLength(length);
    return tf.tidy(() => {
      const projected = causalDepthwiseConv1d(
        linear(u, this.inProjWeight, this.inProjBias),
        this.shortWeight as tf.Tensor3D,
        this.shortBias as tf.Tensor1D,
      );
      const chunks = tf.split(projected, this.config.order + 1, 2) as tf.Tensor3D[];
      const filters = this.stageFilters(length); // [N − 1, L, D]
      const biases = this.stageBiases();
      let z = chunks[this.config.order] as tf.Tensor3D; // v
      for (let stage = 0; stage < this.stages; stage++) {
        z = z.mul(this.gateOf(chunks, stage));
        const taps = filters.slice([stage, 0, 0], [1, length, this.dModel]).reshape([length, this.dModel]);
        const bias = biases.slice([stage, 0], [1, this.dModel]).reshape([this.dModel]);
        z = causalLongConvolution(z, taps as tf.Tensor2D, this.method).add(z.mul(bias));
      }
      return linear(z.mul(chunks[0] as tf.Tensor3D) as tf.Tensor3D, this.outProjWeight, this.outProjBias);
    });
  }

  initState(batchSize: number): HyenaState {
    const width = (this.config.order + 1) * this.dModel;
    const history: Record<string, tf.Tensor3D> = {};
    for (let stage = 0; stage < this.stages; stage++) history[stage] = tf.zeros([batchSize, 0, this.dModel]);
    return { conv: tf.zeros([batchSize, this.config.short_filter_order - 1, width]), history };
  }

  step(u: tf.Tensor2D, state: HyenaState): { y: tf.Tensor2D; state: HyenaState } {
    const position = (state.history[0] as tf.Tensor3D).shape[1];
    this.checkLength(position + 1);
    return tf.tidy(() => {
      const [batch] = u.shape;
      const conv = causalDepthwiseConv1dStep(
        linear(u, this.inProjWeight, this.inProjBias),
        state.conv,
        this.shortWeight as tf.Tensor3D,
        this.shortBias as tf.Tensor1D,
      );
      const chunks = tf.split(conv.y, this.config.order + 1, 1) as tf.Tensor2D[];
      const length = position + 1;
      // Rows 0..t of each stage's filter, [N − 1, t + 1, D]: row s pairs with the input s
      // steps back, which is the history's row s.
      const filters = this.stageFilters(length);
      const biases = this.stageBiases();
      const history: Record<string, tf.Tensor3D> = {};
      let z = chunks[this.config.order] as tf.Tensor2D;
      for (let stage = 0; stage < this.stages; stage++) {
        z = z.mul(this.gateOf(chunks, stage));
        const inputs = tf.concat([z.reshape([batch, 1, this.dModel]), state.history[stage] as tf.Tensor3D], 1);
        const taps = filters.slice([stage, 0, 0], [1, length, this.dModel]).reshape([length, this.dModel]);
        const bias = biases.slice([stage, 0], [1, this.dModel]).reshape([this.dModel]);
        z = inputs.mul(taps).sum(1).add(z.mul(bias));
        history[stage] = inputs as tf.Tensor3D;
      }
      const y = linear(z.mul(chunks[0] as tf.Tensor2D) as tf.Tensor2D, this.outProjWeight, this.outProjBias);
      return { y, state: { conv: conv.window, history } };
    });
  }

  /** The gate applied before stage o's convolution: x_{N−1−o} (safari's reversed(x[1:])). */
  private gateOf<T extends tf.Tensor>(chunks: T[], stage: number): T {
    return chunks[this.config.order - 1 - stage] as T;
  }

  /** The implicit filters for positions 0..length−1, by stage: [N − 1, length, D]. */
  private stageFilters(length: number): tf.Tensor3D {
    return tf.tidy(() =>
      this.filter.generate(length).reshape([length, this.dModel, this.stages]).transpose([2, 0, 1]),
    ) as tf.Tensor3D;
  }

  /** filter_fn.bias by stage: [N − 1, D]. */
  private stageBiases(): tf.Tensor2D {
    return tf.tidy(() => this.filter.bias.reshape([this.dModel, this.stages]).transpose()) as tf.Tensor2D;
  }

  private checkLength(length: number): void {
    if (length > this.config.max_len) {
      throw new InterleaveError(
        `hyena: position ${length} is past max_len ${this.config.max_len}, the longest sequence its filters ` +
          'are defined for; raise max_len in the layer config',
      );
    }
  }
}

/**
 * FLOPs per token (conventions in core's flop-count.ts), as `forward` runs: in_proj to
 * (N + 1)·D, the short depthwise conv, then per long-convolution stage the gate, the FFT
 * convolution (O(log L) per token: see longConvolutionFlops) and its bias term, the last gate,
 * out_proj. The implicit filters are computed from the parameters once per batch and are not
 * counted per token.
 */
function hyenaFlops(config: HyenaConfig, { dModel, seqLen }: FlopShape): FlopCount {
  const projected = (config.order + 1) * dModel;
  const stage = sumFlops(
    pointwiseFlops(dModel), // z ⊙ x_n
    scaleFlops(longConvolutionFlops(seqLen), dModel),
    pointwiseFlops(2 * dModel), // + bias ⊙ z
  );
  return sumFlops(
    linearFlops(dModel, projected, true), // in_proj
    depthwiseConvFlops(projected, config.short_filter_order),
    scaleFlops(stage, config.order - 1),
    pointwiseFlops(dModel), // ⊙ x_0
    linearFlops(dModel, dModel, true), // out_proj
  );
}

/**
 * The short conv's window ((K − 1)·(N + 1)·D) and, per long-convolution stage, every input it
 * has seen (t·D each): it grows with the sequence, as a convolution over the whole prefix must.
 */
function hyenaStateBytes(config: HyenaConfig, { dModel, length }: StateShape): StateSize {
  const window = (config.short_filter_order - 1) * (config.order + 1) * dModel;
  return float32State(window + (config.order - 1) * dModel * length, true);
}

export const hyenaBlock: BlockDefinition<HyenaConfig> = {
  name: 'hyena',
  description: 'Hyena operator: gated implicit long convolutions (Poli et al. 2023)',
  schema: hyenaSchema,
  create: (context, config) => new HyenaMixer(context, config),
  flops: hyenaFlops,
  stateBytes: hyenaStateBytes,
};
