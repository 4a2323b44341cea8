import {
  averageVisibleKeys,
  type BlockContext,
  type BlockDefinition,
  type FlopCount,
  type FlopShape,
  fanInUniformInit,
  float32State,
  type Initializer,
  InterleaveError,
  linearFlops,
  type Mixer,
  type MixerState,
  type ModelDepth,
  matmul,
  normalInit,
  pointwiseFlops,
  SOFTMAX_OPS_PER_ENTRY,
  type StateShape,
  type StateSize,
  scaleFlops,
  sumFlops,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { type AttentionPath, causalAttention } from './ops/banded-attention.js';
import { linear } from './ops/linear.js';
import { applyRotary } from './ops/rotary.js';

/**
 * Causal multi-head attention with RoPE, docs/design.md#attention: query t attends to keys in (t − w, t], or
 * to every earlier key when the window is null. `kv_heads` < `heads` gives grouped or
 * multi-query attention. Training cost is O(L·w) for w ≪ L: `forward` runs the banded form of
 * ops/banded-attention.ts there and the dense masked form otherwise; on webgpu, the fused WGSL
 * kernels of webgpu/banded-attention-wgsl.ts, except full attention over at most 256 positions,
 * which is faster as the dense form there (ops/fused-attention.ts, DENSE_ATTENTION_MAX_LENGTH).
 */
const sharedKeys = {
  heads: z.number().int().positive().default(4),
  /** Key/value heads; 1 = multi-query. Defaults to `heads`. */
  kv_heads: z.number().int().positive().optional(),
  rope_base: z.number().positive().default(10000),
  /**
   * `rope` (default): rotary positions on queries and keys. `none`: no positions in the block,
   * for models that add learned absolute positions to the embeddings
   * (`model.max_position_embeddings`), as Zoology's attention baseline does.
   */
  positions: z.enum(['rope', 'none']).default('rope'),
  /**
   * How the projections start. `pytorch` (default): PyTorch's nn.Linear default, U(±1/√d_model).
   * `zoology`: as Zoology's `_init_weights` (GPT-2's scheme), which its attention baseline trains
   * with: q, k, v ~ N(0, 0.02²) and the output projection ~ N(0, (0.02/√(2·layers))²), layers
   * being the model's residual layers (1 for a block built alone, or with `depth_scaled_init` off).
   */
  init: z.enum(['pytorch', 'zoology']).default('pytorch'),
};

export const slidingWindowSchema = z.strictObject({
  ...sharedKeys,
  /** Keys visible to each query, itself included; `null` = full causal attention. */
  window: z.number().int().positive().nullable(),
});
export const fullAttentionSchema = z.strictObject(sharedKeys);

export type AttentionConfig = z.infer<typeof slidingWindowSchema>;

const MASKED = -1e9;

interface AttentionState extends MixerState {
  /** [B, kv_heads, S, head_dim] with RoPE applied; S = window (a ring buffer) or t (a growing cache). */
  keys: tf.Tensor4D;
  values: tf.Tensor4D;
  position: number;
}

/** Zoology's (GPT-2's) `initializer_range`. */
const ZOOLOGY_INIT_STD = 0.02;

/** The initialisers of the input (q, k, v) and output projections for `init` (the schema's `init`). */
function projectionInits(
  init: AttentionConfig['init'],
  dModel: number,
  depth: ModelDepth | undefined,
): { input: Initializer; output: Initializer } {
  if (init === 'pytorch') return { input: fanInUniformInit(dModel), output: fanInUniformInit(dModel) };
  // Zoology rescales out_proj by √(2·n_layers): two residual branches per TransformerBlock.
  const layers = depth?.layers ?? 1;
  return { input: normalInit(ZOOLOGY_INIT_STD), output: normalInit(ZOOLOGY_INIT_STD / Math.sqrt(2 * layers)) };
}

class AttentionMixer implements Mixer<AttentionState> {
  private readonly heads: number;
  private readonly kvHeads: number;
  private readonly headDim: number;
  private readonly qProj: tf.Variable;
  private readonly kProj: tf.Variable;
  private readonly vProj: tf.Variable;
  private readonly oProj: tf.Variable;

  constructor(
    { dModel, params, depth }: BlockContext,
    private readonly config: AttentionConfig,
  ) {
    this.heads = config.heads;
    this.kvHeads = config.kv_heads ?? config.heads;
    if (dModel % this.heads !== 0) {
      throw new InterleaveError(`heads (${this.heads}) must divide d_model (${dModel})`);
    }
    if (this.heads % this.kvHeads !== 0) {
      throw new InterleaveError(`kv_heads (${this.kvHeads}) must divide heads (${this.heads})`);
    }
    this.headDim = dModel / this.heads;
    if (config.positions === 'rope' && this.headDim % 2 !== 0)
      throw new InterleaveError(`RoPE needs an even head size, got ${this.headDim}`);
    const { input, output } = projectionInits(config.init, dModel, depth);
    this.qProj = params.create('q_proj.weight', [this.heads * this.headDim, dModel], input);
    this.kProj = params.create('k_proj.weight', [this.kvHeads * this.headDim, dModel], input);
    this.vProj = params.create('v_proj.weight', [this.kvHeads * this.headDim, dModel], input);
    this.oProj = params.create('o_proj.weight', [dModel, this.heads * this.headDim], output);
  }

  private get group(): number {
    return this.heads / this.kvHeads;
  }

  /** `path` is for tests and measurements; the default picks the cheaper form (see causalAttention). */
  forward(x: tf.Tensor3D, path: AttentionPath = 'auto'): tf.Tensor3D {
    return tf.tidy(() => {
      const [batch, length] = x.shape;
      const { heads, kvHeads, headDim } = this;
      const split = (w: tf.Variable, n: number) => {
        const projected = linear(x, w).reshape([batch, length, n, headDim]);
        // With one head [B, L, 1, d] → [B, 1, L, d] moves no data: a reshape shares the buffer
        // where a transpose copies it, forward and backward (q, k and v: 12 of the 16 transposes
        // in the step of Zoology's 2-layer 1-head model on the GPU, docs/gpu.md).
        return (
          n === 1 ? projected.reshape([batch, 1, length, headDim]) : projected.transpose([0, 2, 1, 3])
        ) as tf.Tensor4D;
      };
      const base = this.config.rope_base;
      // RoPE at each token's absolute position, before any blocking.
      const queries = this.rotate(split(this.qProj, heads), 0, base).mul(1 / Math.sqrt(headDim)) as tf.Tensor4D;
      const keys = this.rotate(split(this.kProj, kvHeads), 0, base);
      const values = split(this.vProj, kvHeads);
      const mixed = causalAttention({ queries, keys, values }, this.config.window, path);
      return linear(mixed, this.oProj);
    });
  }

  initState(batchSize: number): AttentionState {
    const slots = this.config.window ?? 0;
    return {
      keys: tf.zeros([batchSize, this.kvHeads, slots, this.headDim]),
      values: tf.zeros([batchSize, this.kvHeads, slots, this.headDim]),
      position: 0,
    };
  }

  step(x: tf.Tensor2D, state: AttentionState): { y: tf.Tensor2D; state: AttentionState } {
    return tf.tidy(() => {
      const [batch] = x.shape;
      const { heads, kvHeads, headDim, group } = this;
      const { position } = state;
      const project = (w: tf.Variable, n: number) => linear(x, w).reshape([batch, n, 1, headDim]) as tf.Tensor4D;
      const base = this.config.rope_base;
      const q = this.rotate(project(this.qProj, heads), position, base)
        .reshape([batch, kvHeads, group, headDim])
        .mul(1 / Math.sqrt(headDim));
      const k = this.rotate(project(this.kProj, kvHeads), position, base);
      const v = project(this.vProj, kvHeads);
      const { keys, values, visible } = this.remember(state, k, v);
      const scores = matmul(q, keys, false, true); // [B, kv_heads, group, S]
      const weights = tf.softmax(scores.add(visible));
      const mixed = matmul(weights, values).reshape([batch, heads * headDim]) as tf.Tensor2D;
      return { y: linear(mixed, this.oProj), state: { keys, values, position: position + 1 } };
    });
  }

  /** RoPE from `start` on, or the identity with `positions: none`. */
  private rotate(x: tf.Tensor4D, start: number, base: number): tf.Tensor4D {
    return this.config.positions === 'rope' ? applyRotary(x, start, base) : x;
  }

  /** Adds this token's key/value to the cache; returns the cache and its additive visibility mask. */
  private remember(state: AttentionState, k: tf.Tensor4D, v: tf.Tensor4D) {
    const window = this.config.window;
    if (window === null) {
      const keys = tf.concat([state.keys, k], 2) as tf.Tensor4D;
      const values = tf.concat([state.values, v], 2) as tf.Tensor4D;
      return { keys, values, visible: tf.zeros([keys.shape[2]]) };
    }
    // A ring buffer: slot position % w is overwritten. Attention does not care about key order,
    // since RoPE was applied at each key's own position before it was stored.
    const slot = state.position % window;
    const slotMask = new Float32Array(window);
    slotMask[slot] = 1;
    const select = tf.tensor4d(slotMask, [1, 1, window, 1]);
    const keep = tf.scalar(1).sub(select);
    const keys = state.keys.mul(keep).add(k.mul(select)) as tf.Tensor4D;
    const values = state.values.mul(keep).add(v.mul(select)) as tf.Tensor4D;
    const filled = Math.min(state.position + 1, window);
    const visible = new Float32Array(window).fill(MASKED).fill(0, 0, filled);
    return { keys, values, visible: tf.tensor1d(visible) };
  }
}

/** RoPE per element: x·cos ∓ partner·sin. */
const ROTARY_OPS = 3;

/**
 * FLOPs per token (conventions in core's flop-count.ts): the q/k/v/o projections, RoPE on
 * queries and keys, the 1/√d scale, and per query head QKᵀ, softmax and ·V over the keys the
 * query actually sees — on average (1/L)·Σ_t min(t + 1, w) over the causal positions, (L + 1)/2
 * for full attention — not the masked entries the dense and banded forms also compute. So the
 * cost per token grows with L up to the window, then stays flat.
 */
function attentionFlops(config: AttentionConfig, { dModel, seqLen }: FlopShape): FlopCount {
  const heads = config.heads;
  const kvHeads = config.kv_heads ?? heads;
  const headDim = dModel / heads;
  const keys = averageVisibleKeys(seqLen, config.window);
  const rotated = config.positions === 'rope' ? heads + kvHeads : 0;
  const perHead = sumFlops(
    linearFlops(headDim, keys), // scores q·k for each visible key
    pointwiseFlops(SOFTMAX_OPS_PER_ENTRY * keys),
    linearFlops(keys, headDim), // weights · V
  );
  return sumFlops(
    linearFlops(dModel, heads * headDim), // q_proj
    scaleFlops(linearFlops(dModel, kvHeads * headDim), 2), // k_proj, v_proj
    pointwiseFlops(ROTARY_OPS * rotated * headDim + heads * headDim), // RoPE, 1/√d
    scaleFlops(perHead, heads),
    linearFlops(heads * headDim, dModel), // o_proj
  );
}

/**
 * Keys and values of kv_heads·head_dim each: a ring buffer of `window` slots (allocated whole
 * from the first token), or, for full attention, one per token seen, so it grows with length.
 */
function attentionStateBytes(config: AttentionConfig, { dModel, length }: StateShape): StateSize {
  const kvWidth = (config.kv_heads ?? config.heads) * (dModel / config.heads);
  const slots = config.window ?? length;
  return float32State(2 * kvWidth * slots, config.window === null);
}

export const slidingWindowAttentionBlock: BlockDefinition<AttentionConfig> = {
  name: 'swa',
  description: 'causal sliding-window multi-head attention with RoPE (window: null = full)',
  schema: slidingWindowSchema,
  create: (context, config) => new AttentionMixer(context, config),
  flops: attentionFlops,
  stateBytes: attentionStateBytes,
};

export const fullAttentionBlock: BlockDefinition<z.infer<typeof fullAttentionSchema>> = {
  name: 'attention',
  description: 'causal full multi-head attention with RoPE',
  schema: fullAttentionSchema,
  create: (context, config) => new AttentionMixer(context, { ...config, window: null }),
  flops: (config, shape) => attentionFlops({ ...config, window: null }, shape),
  stateBytes: (config, shape) => attentionStateBytes({ ...config, window: null }, shape),
};

/**
 * Runs an attention block's `forward` through a chosen formulation, so tests and benchmarks can
 * compare the banded and dense paths of the same parameters.
 */
export function attentionForwardVia(mixer: Mixer, x: tf.Tensor3D, path: AttentionPath): tf.Tensor3D {
  if (!(mixer instanceof AttentionMixer)) throw new InterleaveError('attentionForwardVia needs an attention mixer');
  return mixer.forward(x, path);
}
