import { constantInit, fanInUniformInit, normalInit, type ParameterScope } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { linear } from '../ops/linear.js';

/**
 * Hyena's implicit long filters (docs/design.md#hyena, safari's `HyenaFilter`): the filter value at
 * position t is a small network of t's positional embedding, faded by an exponential window,
 *   h(t) = FFN(PosEmb(t)) ⊙ (exp(−t̂ · |δ_c|) + shift),
 * so a filter as long as the sequence costs only the FFN's parameters.
 *
 * - PosEmb(t) = [t̂, cos(f_k ω_t)…, −sin(f_k ω_t)…] with t̂ = t / (max_len − 1) (t̂ ∈ [0, 1] over
 *   the longest sequence), ω_t = 2π t / max_len, and `(emb_dim − 1) / 2` bands f_k evenly from
 *   1e-4 to bands − 1. As in safari, f_0 = 1e-4: with the default emb_dim 3 the sin/cos pair is
 *   almost constant and t̂ carries the position.
 * - FFN = Linear(emb_dim, F) → Sin → [Linear(F, F) → Sin] × num_inner_mlps → Linear(F, C, no
 *   bias), Sin(x) = sin(freq ⊙ x) with one learnable freq [1, F] shared by every Sin (safari
 *   reuses one module), initialised to `sin_freq`.
 * - δ_c evenly from ln(target)/slow_decay_pct to ln(target)/fast_decay_pct over the C channels:
 *   by the end of max_len the fastest channel has decayed to `target` at `fast_decay_pct` of the
 *   way, the slowest at `slow_decay_pct`. A fixed buffer in safari (its lr is 0), a constant here.
 * - Each position's value depends on t and max_len only, never on the current length L: the
 *   filter for L ≤ max_len is the first L rows, so forward is causal and step can build rows
 *   0..t alone.
 *
 * Parameter names as in safari under `filter_fn.`: `implicit_filter.{0,2,…}.weight/bias`,
 * `implicit_filter.1.freq` (safari's state dict repeats the shared freq under every Sin index;
 * it is stored once here), `bias` (the per-channel skip term, N(0, 1) as in safari). None gets
 * weight decay (safari sets wd 0 for the filter network). safari's positional table `pos_emb.z`
 * is a parameter there with lr 1e-5; here it is a constant.
 */
export interface ImplicitFilterOptions {
  /** Output channels C: one filter per channel. */
  readonly channels: number;
  readonly embDim: number;
  /** Width F of the FFN (safari's `order` of the filter). */
  readonly width: number;
  readonly innerLayers: number;
  readonly maxLen: number;
  readonly sinFreq: number;
  readonly fastDecayPct: number;
  readonly slowDecayPct: number;
  readonly target: number;
  readonly shift: number;
}

interface DenseLayer {
  readonly weight: tf.Variable;
  readonly bias?: tf.Variable;
}

export class ImplicitFilter {
  /** The per-channel skip term added to each long convolution: y = h * z + bias ⊙ z. */
  readonly bias: tf.Variable;
  private readonly layers: DenseLayer[] = [];
  private readonly freq: tf.Variable;
  private readonly deltas: Float64Array;

  constructor(
    params: ParameterScope,
    private readonly options: ImplicitFilterOptions,
  ) {
    const { channels, embDim, width, innerLayers } = options;
    const noDecay = { decay: false };
    this.bias = params.create('bias', [channels], normalInit(1), noDecay);
    const dense = (index: number, inFeatures: number, outFeatures: number, withBias: boolean): DenseLayer => {
      const init = fanInUniformInit(inFeatures); // PyTorch's nn.Linear default
      const prefix = `implicit_filter.${index}`;
      const weight = params.create(`${prefix}.weight`, [outFeatures, inFeatures], init, noDecay);
      return withBias ? { weight, bias: params.create(`${prefix}.bias`, [outFeatures], init, noDecay) } : { weight };
    };
    this.layers.push(dense(0, embDim, width, true));
    this.freq = params.create('implicit_filter.1.freq', [1, width], constantInit(options.sinFreq), noDecay);
    for (let i = 0; i < innerLayers; i++) this.layers.push(dense(2 * i + 2, width, width, true));
    this.layers.push(dense(2 * innerLayers + 2, width, channels, false));

    const maxDecay = Math.log(options.target) / options.fastDecayPct;
    const minDecay = Math.log(options.target) / options.slowDecayPct;
    this.deltas = linspace(minDecay, maxDecay, channels);
  }

  /** The filters at positions 0..length−1: [length, C]. */
  generate(length: number): tf.Tensor2D {
    if (length > this.options.maxLen) {
      throw new Error(`hyena: sequence of ${length} positions exceeds max_len ${this.options.maxLen}`);
    }
    return tf.tidy(() => {
      let h: tf.Tensor2D = tf.tensor2d(this.positionalEmbedding(length), [length, this.options.embDim]);
      for (const [index, layer] of this.layers.entries()) {
        h = linear(h, layer.weight, layer.bias);
        if (index < this.layers.length - 1) h = tf.sin(h.mul(this.freq)) as tf.Tensor2D;
      }
      return h.mul(tf.tensor2d(this.modulation(length), [length, this.options.channels]));
    });
  }

  /** [length, emb_dim], row-major. */
  private positionalEmbedding(length: number): Float32Array {
    const { embDim, maxLen } = this.options;
    const bands = (embDim - 1) / 2;
    const frequencies = linspace(1e-4, bands - 1, bands);
    const table = new Float32Array(length * embDim);
    for (let t = 0; t < length; t++) {
      const row = t * embDim;
      table[row] = normalizedTime(t, maxLen);
      const omega = (2 * Math.PI * t) / maxLen;
      for (let k = 0; k < bands; k++) {
        const angle = (frequencies[k] as number) * omega;
        table[row + 1 + k] = Math.cos(angle);
        table[row + 1 + bands + k] = -Math.sin(angle);
      }
    }
    return table;
  }

  /** exp(−t̂ |δ_c|) + shift, [length, C] row-major. */
  private modulation(length: number): Float32Array {
    const { channels, maxLen, shift } = this.options;
    const table = new Float32Array(length * channels);
    for (let t = 0; t < length; t++) {
      const time = normalizedTime(t, maxLen);
      for (let c = 0; c < channels; c++) {
        table[t * channels + c] = Math.exp(-time * Math.abs(this.deltas[c] as number)) + shift;
      }
    }
    return table;
  }
}

/** t / (max_len − 1), as torch.linspace(0, 1, max_len)[t]. */
function normalizedTime(t: number, maxLen: number): number {
  return maxLen > 1 ? t / (maxLen - 1) : 0;
}

/** torch.linspace(start, end, steps), in float64. */
function linspace(start: number, end: number, steps: number): Float64Array {
  return Float64Array.from({ length: steps }, (_, i) =>
    steps === 1 ? start : start + ((end - start) * i) / (steps - 1),
  );
}
