import {
  ACTIVATION_OPS,
  type BlockContext,
  type BlockDefinition,
  constantInit,
  depthwiseConvFlops,
  type FlopCount,
  type FlopShape,
  float32State,
  type Initializer,
  InterleaveError,
  linearFlops,
  type Mixer,
  type MixerState,
  matmul,
  normalInit,
  pointwiseFlops,
  scaleFlops,
  sumFlops,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { gelu } from './ops/activations.js';
import { causalDepthwiseConv1d, causalDepthwiseConv1dStep } from './ops/causal-depthwise-conv.js';
import { linear } from './ops/linear.js';
import { linearRecurrence, type RecurrenceImplementation } from './scan/linear-recurrence.js';

/**
 * Griffin's recurrent block with the RG-LRU (docs/design.md#rg-lru; De et al. 2024, "Griffin"), registered
 * as `rglru`. Parameters and initialisation after google-deepmind/recurrentgemma's PyTorch
 * `RecurrentBlock`, in PyTorch's own layouts: the convolution is a depthwise Conv1d weight
 * [d_rnn, 1, K] where recurrentgemma's `Conv1D.w` is [K, d_rnn], and the gates are flat
 * `rg_lru.a_gate_weight` where recurrentgemma nests `rg_lru.a_gate.w`. `interleave export
 * --layout recurrentgemma` writes (and import reads) recurrentgemma's exact names and layouts. Ours:
 *
 *   linear_y.weight [d_rnn, D], linear_y.bias       gate branch, GeLU
 *   linear_x.weight [d_rnn, D], linear_x.bias       recurrent branch
 *   conv_1d.weight  [d_rnn, 1, conv_width], conv_1d.bias   (PyTorch's depthwise Conv1d layout)
 *   rg_lru.a_gate_weight, rg_lru.input_gate_weight  [heads, d_rnn/heads, d_rnn/heads], laid out
 *                                                   [head, in, out] (y_h = x_h · W_h) as in the reference
 *   rg_lru.a_gate_bias, rg_lru.input_gate_bias      [heads, d_rnn/heads]
 *   rg_lru.a_param  [d_rnn]                         recurrentgemma's a_param, i.e. −Λ of the paper
 *   linear_out.weight [D, d_rnn], linear_out.bias
 *
 * out = linear_out(gelu(linear_y(x)) ⊙ RGLRU(conv_1d(linear_x(x)))), and per channel
 *   r_t = σ(a_gate(x_t)),  i_t = σ(input_gate(x_t)),  log a_t = −c · r_t · softplus(a_param)
 *   h_t = a_t ⊙ h_{t−1} + sqrt(1 − a_t²) ⊙ (i_t ⊙ x_t)
 * With a_param = −Λ this is the paper's log a_t = −c · r_t · softplus(−Λ), a = σ(Λ): we keep the
 * reference's sign so that `a_param` means in a checkpoint what it means in recurrentgemma.
 *
 * Choices where the paper is silent, following the reference:
 * - At the first position (a segment start, the only one here) the input is not multiplied by
 *   sqrt(1 − a_t²): h_0 = i_0 ⊙ x_0. The state starts at the scale of its input instead of
 *   √(1−a²) below it. `step` therefore counts positions in its state.
 * - The gradient of that square root is capped at 1000 (at a_t → 1 it is unbounded).
 * - Biases on every projection and gate, initialised to 0; weights ~ N(0, 1/fan_in) (conv:
 *   N(0, 0.01/conv_width)). The exact (erf) GeLU of ops/activations.ts, where the reference uses
 *   the tanh approximation.
 * - Λ as the reference code draws it (`a_init: recurrentgemma`): a² uniform in [0.81, 0.998];
 *   the Griffin paper's wording, a^c uniform in [0.9, 0.999], is `a_init: griffin_paper`.
 * - linear_out ~ N(0, 1/d_rnn), or N(0, 2/(num_layers · d_rnn)) in a model with
 *   `depth_scaled_init` (recurrentgemma's `final_w_init_variance_scale = 2 / num_layers`).
 */
export const rglruSchema = z
  .strictObject({
    /** Width of the recurrence; `auto` = round(4/3 · d_model). */
    d_rnn: z.union([z.literal('auto'), z.number().int().positive()]).default('auto'),
    /**
     * Diagonal blocks of the gate weights; must divide d_rnn. `auto` = the most heads whose blocks
     * are at least 16 channels wide (1 below d_rnn = 32): d_model 64 → d_rnn 85 → 5 heads of 17.
     */
    heads: z.union([z.literal('auto'), z.number().int().positive()]).default('auto'),
    conv_width: z.number().int().positive().default(4),
    /** The constant c of log a_t = −c · r_t · softplus(−Λ). */
    c: z.number().positive().default(8),
    /**
     * How Λ (a_param) is drawn, both over [a_min, a_max]:
     * - `recurrentgemma` (default): the reference code's `rnn_param_init`: the base a with a²
     *   uniform in [a_min², a_max²] ("uniform on a ring"), so a^c at a fully open gate lies in
     *   [0.43, 0.992] and at init (r ≈ 0.5) the median half-life is ~3.4 tokens;
     * - `griffin_paper`: the paper's wording, a^c uniform in [a_min, a_max] (median half-life ~27).
     */
    a_init: z.enum(['recurrentgemma', 'griffin_paper']).default('recurrentgemma'),
    a_min: z.number().gt(0).lt(1).default(0.9),
    a_max: z.number().gt(0).lt(1).default(0.999),
  })
  .refine((config) => config.a_min <= config.a_max, { message: 'a_min must not exceed a_max', path: ['a_min'] })
  .refine(
    (config) =>
      typeof config.d_rnn !== 'number' || typeof config.heads !== 'number' || config.d_rnn % config.heads === 0,
    { message: 'heads must divide d_rnn', path: ['heads'] },
  );

export type RglruConfig = z.infer<typeof rglruSchema>;

const MIN_AUTO_BLOCK_WIDTH = 16;
const MAX_SQRT_GRADIENT = 1000;
/** Up to this d_rnn the gates run as one dense product (see denseGates). */
const DENSE_GATES_MAX_WIDTH = 1024;

export function resolveRnnWidth(config: RglruConfig, dModel: number): { dRnn: number; heads: number } {
  const dRnn = config.d_rnn === 'auto' ? Math.round((4 / 3) * dModel) : config.d_rnn;
  let heads = 1;
  if (config.heads !== 'auto') heads = config.heads;
  else {
    for (let candidate = 1; dRnn / candidate >= MIN_AUTO_BLOCK_WIDTH; candidate++) {
      if (dRnn % candidate === 0) heads = candidate;
    }
  }
  if (dRnn % heads !== 0) throw new InterleaveError(`rglru: heads (${heads}) must divide d_rnn (${dRnn})`);
  return { dRnn, heads };
}

/** recurrentgemma's `rnn_param_init` adds this inside the uniform draw of a². */
const RING_INIT_EPS = 1e-8;

/**
 * a_param, stored so that softplus(a_param) = −log a (a = the decay at r_t = 1/c). With
 * `recurrentgemma`, a² ~ U(a_min², a_max²); with `griffin_paper`, a^c ~ U(a_min, a_max).
 */
function decayParameterInit(config: RglruConfig): Initializer {
  const minusLogA =
    config.a_init === 'recurrentgemma'
      ? (u: number) => -0.5 * Math.log(config.a_min ** 2 + RING_INIT_EPS + u * (config.a_max ** 2 - config.a_min ** 2))
      : (u: number) => -Math.log(config.a_min + u * (config.a_max - config.a_min)) / config.c;
  return (rng, shape) =>
    Float32Array.from({ length: shape[0] as number }, () => Math.log(Math.expm1(minusLogA(rng.next())))); // inverse softplus
}

/** sqrt whose derivative 1/(2√v) is capped at MAX_SQRT_GRADIENT, as in recurrentgemma. */
function sqrtWithBoundedGradient<T extends tf.Tensor>(value: T): T {
  const op = tf.customGrad((v, save) => {
    (save as tf.GradSaveFunc)([v as tf.Tensor]);
    return {
      value: tf.sqrt(v as tf.Tensor),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        dy.div(tf.sqrt(tf.maximum((saved[0] as tf.Tensor).mul(4), 1 / MAX_SQRT_GRADIENT ** 2))),
    };
  });
  return op(value) as T;
}

/** Per-position coefficients of the RG-LRU recurrence h_t = decay_t ⊙ h_{t−1} + drive_t. */
function recurrenceCoefficients<T extends tf.Tensor>(x: T, aGate: T, inputGate: T, aParam: tf.Tensor, c: number) {
  const logDecay = tf.sigmoid(aGate).mul(tf.softplus(aParam)).mul(-c);
  const gatedInput = x.mul(tf.sigmoid(inputGate)) as T;
  // sqrt(1 − a²) as sqrt(−expm1(2 log a)): exact where a → 1, which is where the memory lives.
  const normaliser = sqrtWithBoundedGradient(tf.expm1(logDecay.mul(2)).neg());
  return { decay: tf.exp(logDecay) as T, gatedInput, normalisedInput: gatedInput.mul(normaliser) as T };
}

export interface RgLruInputs {
  /** The recurrent branch after the convolution, [B, L, d_rnn]. */
  x: tf.Tensor3D;
  /** Pre-sigmoid gates a_gate(x) and input_gate(x), [B, L, d_rnn]. */
  aGate: tf.Tensor3D;
  inputGate: tf.Tensor3D;
  /** recurrentgemma's a_param (= −Λ), [d_rnn]. */
  aParam: tf.Tensor;
  c: number;
}

/** The RG-LRU over whole sequences that start at position 0: every h_t, [B, L, d_rnn]. */
export function rgLru(inputs: RgLruInputs, implementation?: RecurrenceImplementation): tf.Tensor3D {
  return tf.tidy(() => {
    const { x, aGate, inputGate, aParam, c } = inputs;
    const [batch, length, width] = x.shape;
    const { decay, gatedInput, normalisedInput } = recurrenceCoefficients(x, aGate, inputGate, aParam, c);
    const drive =
      length === 1
        ? gatedInput
        : tf.concat(
            [
              gatedInput.slice([0, 0, 0], [batch, 1, width]),
              normalisedInput.slice([0, 1, 0], [batch, length - 1, width]),
            ],
            1,
          );
    return linearRecurrence(decay, drive as tf.Tensor3D, implementation);
  });
}

interface RglruState extends MixerState {
  /** The last conv_width − 1 inputs of the convolution, [B, conv_width − 1, d_rnn]. */
  conv: tf.Tensor3D;
  /** The RG-LRU state, [B, d_rnn]. */
  h: tf.Tensor2D;
  /** Tokens seen so far (position 0 skips the input normalisation). */
  position: number;
}

class RglruMixer implements Mixer<RglruState> {
  /** `position` is read only at 0 (the first token skips the input normalisation). */
  readonly stepStationaryFrom = 1;
  private readonly dRnn: number;
  private readonly heads: number;
  private readonly inWeights: tf.Variable[];
  private readonly inBiases: tf.Variable[];
  private readonly convWeight: tf.Variable;
  private readonly convBias: tf.Variable;
  private readonly gateWeights: tf.Variable[];
  private readonly gateBiases: tf.Variable[];
  private readonly aParam: tf.Variable;
  private readonly outWeight: tf.Variable;
  private readonly outBias: tf.Variable;

  constructor(
    context: BlockContext,
    private readonly config: RglruConfig,
  ) {
    const { dModel, params } = context;
    const { dRnn, heads } = resolveRnnWidth(config, dModel);
    this.dRnn = dRnn;
    this.heads = heads;
    const blockWidth = dRnn / heads;
    const zeros = constantInit(0);
    const inInit = normalInit(Math.sqrt(1 / dModel));
    // The gate branch (y) comes first: one product serves both projections.
    this.inWeights = ['linear_y', 'linear_x'].map((name) => params.create(`${name}.weight`, [dRnn, dModel], inInit));
    this.inBiases = ['linear_y', 'linear_x'].map((name) => params.create(`${name}.bias`, [dRnn], zeros));
    this.convWeight = params.create(
      'conv_1d.weight',
      [dRnn, 1, config.conv_width],
      normalInit(Math.sqrt(0.01 / config.conv_width)),
    );
    this.convBias = params.create('conv_1d.bias', [dRnn], zeros);
    const gateInit = normalInit(Math.sqrt(1 / blockWidth));
    // The a (recurrence) gate first, then the input gate, stacked along the output axis below.
    this.gateWeights = ['a_gate', 'input_gate'].map((name) =>
      params.create(`rg_lru.${name}_weight`, [heads, blockWidth, blockWidth], gateInit),
    );
    this.gateBiases = ['a_gate', 'input_gate'].map((name) =>
      params.create(`rg_lru.${name}_bias`, [heads, blockWidth], zeros, { decay: false }),
    );
    this.aParam = params.create('rg_lru.a_param', [dRnn], decayParameterInit(config), { decay: false });
    // recurrentgemma: variance final_w_init_variance_scale / d_rnn, the scale 2 / num_layers in a model.
    const outVarianceScale = context.depth === undefined ? 1 : 2 / context.depth.layers;
    this.outWeight = params.create('linear_out.weight', [dModel, dRnn], normalInit(Math.sqrt(outVarianceScale / dRnn)));
    this.outBias = params.create('linear_out.bias', [dModel], zeros);
  }

  forward(u: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const [gateBranch, xIn] = this.project(u);
      const x = causalDepthwiseConv1d(xIn, this.convWeight as tf.Tensor3D, this.convBias as tf.Tensor1D);
      const [aGate, inputGate] = this.gates(x);
      const h = rgLru({ x, aGate, inputGate, aParam: this.aParam, c: this.config.c });
      return linear(h.mul(gelu(gateBranch)) as tf.Tensor3D, this.outWeight, this.outBias);
    });
  }

  initState(batchSize: number): RglruState {
    return {
      conv: tf.zeros([batchSize, this.config.conv_width - 1, this.dRnn]),
      h: tf.zeros([batchSize, this.dRnn]),
      position: 0,
    };
  }

  step(u: tf.Tensor2D, state: RglruState): { y: tf.Tensor2D; state: RglruState } {
    return tf.tidy(() => {
      const [gateBranch, xIn] = this.project(u);
      const conv = causalDepthwiseConv1dStep(
        xIn,
        state.conv,
        this.convWeight as tf.Tensor3D,
        this.convBias as tf.Tensor1D,
      );
      const [aGate, inputGate] = this.gates(conv.y);
      const { decay, gatedInput, normalisedInput } = recurrenceCoefficients(
        conv.y,
        aGate,
        inputGate,
        this.aParam,
        this.config.c,
      );
      const h = decay.mul(state.h).add(state.position === 0 ? gatedInput : normalisedInput) as tf.Tensor2D;
      const y = linear(h.mul(gelu(gateBranch)) as tf.Tensor2D, this.outWeight, this.outBias);
      return { y, state: { conv: conv.window, h, position: state.position + 1 } };
    });
  }

  /** linear_y and linear_x as one product; returns [gate branch, recurrent branch]. */
  private project<T extends tf.Tensor2D | tf.Tensor3D>(u: T): [T, T] {
    const weight = tf.concat(this.inWeights, 0);
    const bias = tf.concat(this.inBiases, 0);
    return tf.split(linear(u, weight, bias), 2, u.rank - 1) as [T, T];
  }

  /** The block-diagonal a and input gates (pre-sigmoid), [..., d_rnn] each. */
  private gates<T extends tf.Tensor2D | tf.Tensor3D>(x: T): [T, T] {
    const [aGate, inputGate] = this.dRnn <= DENSE_GATES_MAX_WIDTH ? this.denseGates(x) : this.perHeadGates(x);
    return [(aGate as tf.Tensor).reshape(x.shape) as T, (inputGate as tf.Tensor).reshape(x.shape) as T];
  }

  /**
   * Both gates as one plain product with the blocks laid into a dense [d_rnn, 2·d_rnn] matrix
   * (zeros off the blocks, so their gradient is zero). `heads` times the FLOPs of the per-head
   * form, but at these widths faster on wasm, whose batched matMul is slow with small blocks:
   * at d_model 64, d_rnn 85 in 5 heads, B·L = 2048, the block's forward+backward took 79 ms
   * per head and 57 ms dense (best of 20); at d_rnn 340 in 10 heads, 309 and 297 ms.
   */
  private denseGates(x: tf.Tensor): tf.Tensor[] {
    const { heads, dRnn } = this;
    const blockWidth = dRnn / heads;
    // [heads, bw_in, 2, 1, bw_out] ⊙ one-hot [heads, 1, 1, heads, 1] = [heads, bw_in, 2, heads, bw_out]:
    // row h·bw + i, column gate·d_rnn + h'·bw + j, zero unless h = h'.
    let weight = tf.concat(this.gateWeights, 2).reshape([heads, blockWidth, 2, 1, blockWidth]);
    if (heads > 1) weight = weight.mul(oneHotHeads(heads));
    const bias = tf.concat(this.gateBiases.map((b) => b.reshape([dRnn])));
    const product = matmul(x.reshape([-1, dRnn]), weight.reshape([dRnn, 2 * dRnn])).add(bias);
    return tf.split(product, 2, 1);
  }

  /** Both gates as one batched product over heads: [heads, N, bw] · [heads, bw, 2·bw]. */
  private perHeadGates(x: tf.Tensor): tf.Tensor[] {
    const { heads, dRnn } = this;
    const blockWidth = dRnn / heads;
    const weight = tf.concat(this.gateWeights, 2);
    const bias = tf.concat(this.gateBiases, 1).expandDims(1); // [heads, 1, 2·bw]
    const blocks = x.reshape([-1, heads, blockWidth]).transpose([1, 0, 2]);
    const product = matmul(blocks, weight).add(bias); // [heads, N, 2·bw]
    return tf.split(product, 2, 2).map((gate) => gate.transpose([1, 0, 2]));
  }
}

/** [heads, 1, 1, heads, 1] with ones where the two head indices agree. */
function oneHotHeads(heads: number): tf.Tensor {
  const values = new Float32Array(heads * heads);
  for (let h = 0; h < heads; h++) values[h * heads + h] = 1;
  return tf.tensor(values, [heads, 1, 1, heads, 1]);
}

/**
 * Pointwise ops per channel of recurrenceCoefficients: log a = −c·σ(r)·softplus(a_param) (3;
 * the softplus of a parameter is once per batch), σ(i)·x (2), sqrt(−expm1(2 log a)) (4), its
 * product with the gated input (1), a = exp(log a) (1).
 */
const COEFFICIENT_OPS = 11;

/**
 * FLOPs per token (conventions in core's flop-count.ts), as `forward` runs: linear_y and
 * linear_x, conv_1d, the two block-diagonal gates at their intrinsic cost (up to d_rnn 1024
 * they run as one dense product, `heads` times that work, because it is faster on wasm), the
 * RG-LRU coefficients, the recurrence h = a·h + b (2 forward; backward as
 * scan/linear-recurrence.ts: g = dy + carry, g·h_{t−1}, carry = g·a, 3), the GeLU gate,
 * linear_out. Independent of the sequence length.
 */
function rglruFlops(config: RglruConfig, { dModel }: FlopShape): FlopCount {
  const { dRnn, heads } = resolveRnnWidth(config, dModel);
  const blockWidth = dRnn / heads;
  return sumFlops(
    linearFlops(dModel, 2 * dRnn, true), // linear_y, linear_x
    depthwiseConvFlops(dRnn, config.conv_width),
    scaleFlops(linearFlops(blockWidth, 2 * blockWidth, true), heads), // a_gate, input_gate
    pointwiseFlops(COEFFICIENT_OPS * dRnn),
    { forward: 2 * dRnn, backward: 3 * dRnn }, // the recurrence
    pointwiseFlops((ACTIVATION_OPS.gelu + 1) * dRnn), // ⊙ gelu(linear_y x)
    linearFlops(dRnn, dModel, true), // linear_out
  );
}

export const rglruBlock: BlockDefinition<RglruConfig> = {
  name: 'rglru',
  description: "Griffin's recurrent block with the RG-LRU (De et al. 2024)",
  schema: rglruSchema,
  create: (context, config) => new RglruMixer(context, config),
  flops: rglruFlops,
  // h (d_rnn) and the conv window (conv_width − 1 inputs of d_rnn): 4·d_rnn·conv_width bytes.
  stateBytes: (config, { dModel }) => float32State(resolveRnnWidth(config, dModel).dRnn * config.conv_width),
};
