/**
 * RWKV-7 "Goose" time mixing (Peng et al. 2025), with the parameter names, layouts, defaults and
 * (layer-0) initialisation of fla-org/flash-linear-attention's `RWKV7Attention`
 * (`fla/layers/rwkv7.py`), per token t and head:
 *
 *   δ_t = x_{t−1} − x_t (x_{−1} = 0);  x^c = x + δ ⊙ x_c for c ∈ {r, w, k, v, a, g}     token shift
 *   r = r_proj x^r,  k = k_proj x^k,  v = v_proj x^v
 *   λ = −e^{−1/2} σ(w_lora(x^w))            log decay, w = e^λ ∈ (0.545, 1)   (tanh LoRA with bias)
 *   α = σ(a_lora(x^a))                      in-context learning rate          (linear LoRA with bias)
 *   g = g_lora(x^g)                         output gate                       (sigmoid LoRA, no bias)
 *   κ̂ = normalize(k ⊙ k_k) per head;  k ← k ⊙ (1 + (α − 1) ⊙ k_a)
 *   S_t = S_{t−1} (diag(w_t) − κ̂_t (κ̂_t ⊙ α_t)ᵀ) + v_t k_tᵀ,   o_t = S_t r_t   (dplr-recurrence.ts)
 *   o ← (GroupNorm_heads(o) + Σ(r ⊙ k ⊙ r_k)·v) ⊙ g;  y = o_proj o                  bonus, gate
 *
 * Departures from fla, each named: the value residual across layers (fla's `v_lora`, mixing each
 * later layer's v towards the first layer's) is left out, since a block sees no other layer; every
 * rwkv7 block computes and is initialised as fla's layer 0. `init: fan_in` replaces the reference
 * initialisation of the matrices (orthogonal projections, a zero o_proj and zero LoRA
 * down-projections, under which the output is identically 0 at step 0) by PyTorch's nn.Linear
 * default, for tests that must see every path.
 */
import {
  ACTIVATION_OPS,
  type BlockContext,
  type BlockDefinition,
  constantInit,
  type FlopCount,
  type FlopShape,
  fanInUniformInit,
  float32State,
  type Initializer,
  InterleaveError,
  linearFlops,
  type Mixer,
  type MixerState,
  matmul,
  pointwiseFlops,
  scaleFlops,
  sumFlops,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { chunkedDplr, type DplrInputs, dplrFlops, dplrStep, MAX_CHUNK } from './dplr-recurrence.js';
import { linearProfile, orthogonalInit, shiftMixInit, valuesInit, zigzagProfile } from './reference-init.js';

const lowRank = z.union([z.literal('auto'), z.number().int().positive()]).default('auto');

export const rwkv7Schema = z.strictObject({
  /** Width per head (fla's default 64); ignored when `heads` is given. */
  head_dim: z.number().int().positive().default(64),
  /** Number of heads; head_dim = d_model / heads. */
  heads: z.number().int().positive().optional(),
  /** Ranks of the LoRA projections; `auto` is fla's rule (a multiple of 32 from √d_model). */
  decay_low_rank_dim: lowRank,
  a_low_rank_dim: lowRank,
  gate_low_rank_dim: lowRank,
  /** The GroupNorm's ε is head_dim · norm_eps, as in fla. */
  norm_eps: z.number().positive().default(1e-5),
  /** Tokens per chunk of the parallel form (a power of two ≤ 64); changes the speed, not the result. */
  chunk_size: z
    .number()
    .int()
    .positive()
    .max(MAX_CHUNK)
    .refine((n) => (n & (n - 1)) === 0, { message: 'chunk_size must be a power of two' })
    .default(16),
  /** `reference`: fla's layer-0 init; `fan_in`: U(±1/√fan_in) matrices (see above). */
  init: z.enum(['reference', 'fan_in']).default('reference'),
});

export type Rwkv7Config = z.infer<typeof rwkv7Schema>;

/** The sizes a config resolves to at a model width. */
export interface Rwkv7Layout {
  readonly heads: number;
  readonly headDim: number;
  readonly decayRank: number;
  readonly aRank: number;
  readonly gateRank: number;
}

/** Python's round(): halves go to the even neighbour (round(2.5) = 2), unlike Math.round. */
function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const fraction = x - floor;
  if (fraction !== 0.5) return Math.round(x);
  return floor % 2 === 0 ? floor : floor + 1;
}

/** fla's rule: max(32, round(scale·√D·factor / 32)·32), factor = head_dim / 64 for the decay and a. */
function autoRank(dModel: number, scale: number, factor: number): number {
  return Math.max(32, roundHalfEven((scale * Math.sqrt(dModel) * factor) / 32) * 32);
}

export function rwkv7Layout(config: Rwkv7Config, dModel: number): Rwkv7Layout {
  const headDim = config.heads === undefined ? config.head_dim : dModel / config.heads;
  if (!Number.isInteger(headDim) || dModel % headDim !== 0) {
    const given = config.heads === undefined ? `head_dim ${config.head_dim}` : `heads ${config.heads}`;
    throw new InterleaveError(`rwkv7: d_model ${dModel} is not divisible by ${given}`);
  }
  const factor = headDim / 64;
  const rank = (value: number | 'auto', scale: number, scaled: boolean) =>
    value === 'auto' ? autoRank(dModel, scale, scaled ? factor : 1) : value;
  return {
    heads: dModel / headDim,
    headDim,
    decayRank: rank(config.decay_low_rank_dim, 2.5, true),
    aRank: rank(config.a_low_rank_dim, 2.5, true),
    gateRank: rank(config.gate_low_rank_dim, 5, false),
  };
}

interface Rwkv7State extends MixerState {
  /** The previous token's input x_{t−1}: [B, D]. */
  previous: tf.Tensor2D;
  /** Per head H = Sᵀ: [B, heads, head_dim, head_dim]. */
  memory: tf.Tensor4D;
}

/** fla's LoRA: lora.2(act(lora.0 x)) (+ lora.2.bias). */
class LowRank {
  private readonly down: tf.Variable;
  private readonly up: tf.Variable;
  private readonly bias: tf.Variable | undefined;

  constructor(
    scope: BlockContext['params'],
    dims: { input: number; rank: number; output: number },
    private readonly activation: (x: tf.Tensor) => tf.Tensor,
    inits: { down: Initializer; up: Initializer; bias?: Initializer },
  ) {
    this.down = scope.create('lora.0.weight', [dims.rank, dims.input], inits.down);
    this.up = scope.create('lora.2.weight', [dims.output, dims.rank], inits.up);
    if (inits.bias !== undefined) this.bias = scope.create('lora.2.bias', [dims.output], inits.bias);
  }

  apply<T extends tf.Tensor>(x: T): T {
    const hidden = linear(this.activation(linear(x, this.down)), this.up);
    return (this.bias === undefined ? hidden : hidden.add(this.bias)) as T;
  }
}

/** x [.., in] → [.., out] with weight [out, in] (PyTorch's layout). */
function linear<T extends tf.Tensor>(x: T, weight: tf.Tensor): T {
  const [rows, columns] = weight.shape as [number, number];
  const flat = matmul(x.reshape([-1, columns]) as tf.Tensor2D, weight, false, true);
  return flat.reshape([...x.shape.slice(0, -1), rows]) as T;
}

/** −e^{−1/2}: λ = −e^{−1/2} σ(·) is RWKV-7's w = −softplus(−z) − 1/2 in log-log form. */
const DECAY_SCALE = -Math.exp(-0.5);

class Rwkv7Mixer implements Mixer<Rwkv7State> {
  private readonly shiftMixes: Record<'r' | 'w' | 'k' | 'v' | 'a' | 'g', tf.Variable>;
  private readonly kk: tf.Variable;
  private readonly ka: tf.Variable;
  private readonly rk: tf.Variable;
  private readonly rProj: tf.Variable;
  private readonly kProj: tf.Variable;
  private readonly vProj: tf.Variable;
  private readonly oProj: tf.Variable;
  private readonly wLora: LowRank;
  private readonly aLora: LowRank;
  private readonly gLora: LowRank;
  private readonly normWeight: tf.Variable;
  private readonly normBias: tf.Variable;
  private readonly normEps: number;

  constructor(
    private readonly dModel: number,
    { params, depth }: BlockContext,
    private readonly layout: Rwkv7Layout,
    private readonly config: Rwkv7Config,
  ) {
    const { heads, headDim } = layout;
    const D = dModel;
    const linearAt = linearProfile(D);
    const zigzag = zigzagProfile(D, headDim);
    const reference = config.init === 'reference';
    const matrix = (fanIn: number, referenceInit: Initializer) => (reference ? referenceInit : fanInUniformInit(fanIn));
    const noDecay = { decay: false };
    // Created in fla's order, so a state dict lines up parameter by parameter.
    this.shiftMixes = {
      r: params.create('x_r', [1, 1, D], shiftMixInit(0.2), noDecay),
      w: params.create('x_w', [1, 1, D], shiftMixInit(0.9), noDecay),
      k: params.create('x_k', [1, 1, D], shiftMixInit(0.7), noDecay),
      v: params.create('x_v', [1, 1, D], shiftMixInit(0.7), noDecay),
      a: params.create('x_a', [1, 1, D], shiftMixInit(0.9), noDecay),
      g: params.create('x_g', [1, 1, D], shiftMixInit(0.2), noDecay),
    };
    this.kk = params.create('k_k', [D], valuesInit(linearAt.map((l) => 0.71 - 0.1 * l)));
    this.ka = params.create('k_a', [D], constantInit(1.02));
    this.rk = params.create('r_k', [heads, headDim], constantInit(-0.04), noDecay);
    this.rProj = params.create('r_proj.weight', [D, D], matrix(D, orthogonalInit(1)));
    this.kProj = params.create('k_proj.weight', [D, D], matrix(D, orthogonalInit(0.1)));
    this.vProj = params.create('v_proj.weight', [D, D], matrix(D, orthogonalInit(1)));
    this.oProj = params.create('o_proj.weight', [D, D], matrix(D, constantInit(0)));
    const loraUp = (rank: number) => orthogonalInit(0.1 * (rank > D ? Math.sqrt(rank / D) : 1));
    const lora = (name: string, rank: number, activation: (x: tf.Tensor) => tf.Tensor, bias?: Initializer) =>
      new LowRank(params.scope(name), { input: D, rank, output: D }, activation, {
        down: matrix(D, constantInit(0)),
        up: matrix(rank, loraUp(rank)),
        ...(bias === undefined ? {} : { bias }),
      });
    // Biases: the decay's w0 (−6 … 0 across channels, plus 1/2 for the softplus, plus a zigzag
    // within heads) and the learning rate's a0.
    this.wLora = lora(
      'w_lora',
      layout.decayRank,
      tf.tanh,
      valuesInit(linearAt.map((l, n) => -6 + 6 * (l + 0.5) + 0.5 + 2.5 * (zigzag[n] as number))),
    );
    this.aLora = lora(
      'a_lora',
      layout.aRank,
      (x) => x,
      valuesInit(linearAt.map((l, n) => -0.19 + 0.3 * (zigzag[n] as number) + 0.4 * l)),
    );
    this.gLora = lora('g_lora', layout.gateRank, tf.sigmoid);
    const layers = depth?.layers ?? 1;
    this.normWeight = params.create('g_norm.weight', [D], constantInit((1 / layers) ** 0.7));
    this.normBias = params.create('g_norm.bias', [D], constantInit(0));
    this.normEps = headDim * config.norm_eps;
  }

  forward(x: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => {
      const [batch, length, D] = x.shape;
      const previous = tf
        .pad(x, [
          [0, 0],
          [1, 0],
          [0, 0],
        ])
        .slice([0, 0, 0], [batch, length, D]) as tf.Tensor3D;
      const features = this.features(x, previous);
      const toHeads = (t: tf.Tensor) =>
        t.reshape([batch, length, this.layout.heads, this.layout.headDim]).transpose([0, 2, 1, 3]) as tf.Tensor4D;
      const o = chunkedDplr(
        {
          r: toHeads(features.r),
          k: toHeads(features.k),
          v: toHeads(features.v),
          logDecay: toHeads(features.logDecay),
          a: toHeads(features.a),
          b: toHeads(features.b),
        },
        this.config.chunk_size,
      ).transpose([0, 2, 1, 3]); // [B, L, heads, head_dim]
      return this.output(o, features) as tf.Tensor3D;
    });
  }

  initState(batchSize: number): Rwkv7State {
    const { heads, headDim } = this.layout;
    return {
      previous: tf.zeros([batchSize, this.dModel]),
      memory: tf.zeros([batchSize, heads, headDim, headDim]),
    };
  }

  step(x: tf.Tensor2D, state: Rwkv7State): { y: tf.Tensor2D; state: Rwkv7State } {
    return tf.tidy(() => {
      const [batch] = x.shape;
      const features = this.features(x, state.previous);
      const toHeads = (t: tf.Tensor) => t.reshape([batch, this.layout.heads, this.layout.headDim]) as tf.Tensor3D;
      const inputs: DplrInputs<tf.Tensor3D> = {
        r: toHeads(features.r),
        k: toHeads(features.k),
        v: toHeads(features.v),
        logDecay: toHeads(features.logDecay),
        a: toHeads(features.a),
        b: toHeads(features.b),
      };
      const result = dplrStep(state.memory, inputs);
      const y = this.output(result.output, features) as tf.Tensor2D;
      return { y, state: { previous: tf.clone(x), memory: result.state } };
    });
  }

  /** Everything per token before the recurrence, for x [.., D] and the previous tokens [.., D]. */
  private features<T extends tf.Tensor>(x: T, previous: tf.Tensor) {
    const delta = previous.sub(x);
    const mixed = (c: keyof Rwkv7Mixer['shiftMixes']) =>
      x.add(delta.mul(this.shiftMixes[c].reshape([this.dModel]))) as T;
    const r = linear(mixed('r'), this.rProj);
    const logDecay = tf.sigmoid(this.wLora.apply(mixed('w'))).mul(DECAY_SCALE) as T;
    const rawK = linear(mixed('k'), this.kProj);
    const v = linear(mixed('v'), this.vProj);
    const rate = tf.sigmoid(this.aLora.apply(mixed('a'))) as T; // α
    const gate = this.gLora.apply(mixed('g'));
    const removal = this.perHeadNormalize(rawK.mul(this.kk) as T); // κ̂
    const k = rawK.mul(rate.sub(1).mul(this.ka).add(1)) as T;
    return { r, k, v, logDecay, a: removal.neg() as T, b: removal.mul(rate) as T, gate };
  }

  /** F.normalize over each head's features: x / max(‖x‖, 1e-12). */
  private perHeadNormalize<T extends tf.Tensor>(x: T): T {
    const { heads, headDim } = this.layout;
    const split = x.reshape([...x.shape.slice(0, -1), heads, headDim]);
    const norm = tf.maximum(split.square().sum(-1, true).sqrt(), 1e-12);
    return split.div(norm).reshape(x.shape) as T;
  }

  /** GroupNorm over each head, the bonus Σ(r ⊙ k ⊙ r_k)·v, the gate and o_proj; o [.., heads, head_dim]. */
  private output(o: tf.Tensor, features: ReturnType<Rwkv7Mixer['features']>): tf.Tensor {
    const { heads, headDim } = this.layout;
    const split = (t: tf.Tensor) => t.reshape([...t.shape.slice(0, -1), heads, headDim]);
    const mean = o.mean(-1, true);
    const centred = o.sub(mean);
    const variance = centred.square().mean(-1, true);
    const perChannel = (t: tf.Tensor) => t.reshape([heads, headDim]);
    const normed = centred
      .mul(tf.rsqrt(variance.add(this.normEps)))
      .mul(perChannel(this.normWeight))
      .add(perChannel(this.normBias));
    const bonus = split(features.r).mul(split(features.k)).mul(this.rk).sum(-1, true).mul(split(features.v));
    const gated = normed.add(bonus).reshape(features.gate.shape).mul(features.gate);
    return linear(gated, this.oProj);
  }
}

/**
 * FLOPs per token (conventions in core's flop-count.ts): token shift and the six mixes, r/k/v and
 * o_proj, the three LoRAs and their activations, κ̂ and the k update, the chunked recurrence per
 * head, the GroupNorm, the bonus and the gate.
 */
export function rwkv7Flops(config: Rwkv7Config, { dModel: D, seqLen }: FlopShape): FlopCount {
  const layout = rwkv7Layout(config, D);
  const lowRankFlops = (rank: number, bias: boolean) => sumFlops(linearFlops(D, rank), linearFlops(rank, D, bias));
  const chunk = Math.min(config.chunk_size, 2 ** Math.ceil(Math.log2(Math.max(seqLen, 1))));
  return sumFlops(
    pointwiseFlops(D + 6 * 2 * D), // δ, x + δ ⊙ x_c
    scaleFlops(linearFlops(D, D), 4), // r, k, v, o
    lowRankFlops(layout.decayRank, true),
    lowRankFlops(layout.aRank, true),
    lowRankFlops(layout.gateRank, false),
    pointwiseFlops(layout.decayRank + (ACTIVATION_OPS.sigmoid + 1) * D), // tanh, σ, scale
    pointwiseFlops(ACTIVATION_OPS.sigmoid * (D + layout.gateRank)), // α, the gate's σ
    pointwiseFlops(5 * D + 2 * layout.heads), // k ⊙ k_k, normalise, −κ̂, κ̂ ⊙ α
    pointwiseFlops(4 * D), // k ⊙ (1 + (α − 1) ⊙ k_a)
    scaleFlops(dplrFlops(layout.headDim, layout.headDim, chunk), layout.heads),
    pointwiseFlops(7 * D + 2 * layout.heads), // GroupNorm
    pointwiseFlops(4 * D + 2 * D), // bonus, + and gate
  );
}

export const rwkv7Block: BlockDefinition<Rwkv7Config> = {
  name: 'rwkv7',
  description: 'RWKV-7 "Goose" time mixing: the generalized delta rule with a dynamic decay, chunked DPLR form',
  schema: rwkv7Schema,
  create: (context, config) => new Rwkv7Mixer(context.dModel, context, rwkv7Layout(config, context.dModel), config),
  flops: rwkv7Flops,
  // The previous token (token shift) and per head the [head_dim, head_dim] state.
  stateBytes: (config, { dModel }) => {
    const { heads, headDim } = rwkv7Layout(config, dModel);
    return float32State(dModel + heads * headDim * headDim);
  },
};
