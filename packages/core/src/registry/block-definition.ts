import type * as tf from '@tensorflow/tfjs';
import type { z } from 'zod';
import type { BackendCapabilities } from '../backend/capabilities.js';
import type { MlpConfig } from '../config/schema.js';
import type { FlopCount } from '../model/flop-count.js';
import type { ParameterScope } from '../model/parameter-store.js';
import type { SeededRandom } from '../random/seeded-random.js';

/**
 * The recurrent state of a mixer between `step` calls: any plain object of tensors and
 * numbers. Whoever holds a state owns its tensors and disposes them with `tf.dispose(state)`.
 */
export type MixerState = { readonly [key: string]: tf.Tensor | number | MixerState };

/** A sequence mixer (docs/design.md#forward-and-step): a parallel form for training and a step form for generation. */
export interface Mixer<State extends MixerState = MixerState> {
  /** x [B, L, D] → [B, L, D]; causal. */
  forward(x: tf.Tensor3D): tf.Tensor3D;
  /** The empty state for a batch of `batchSize` sequences. */
  initState(batchSize: number): State;
  /**
   * One token: x [B, D] → y [B, D] and the next state. Does not dispose `state`; running
   * `step` over a sequence reproduces `forward` to 1e-4.
   */
  step(x: tf.Tensor2D, state: State): { y: tf.Tensor2D; state: State };
  /**
   * For step-mode evaluations that record `step` once and replay it (eval's step-mode-replay.ts):
   * the position from which `step` does the same GPU work at every token whatever the numbers in
   * its state say (RG-LRU: 1, after its first-token branch). Leave it out when the step keeps
   * reading such a number (a ring buffer's slot, RoPE's position): a model with that mixer is then
   * never replayed. A state of tensors alone needs no declaration.
   */
  readonly stepStationaryFrom?: number;
}

/** What a block gets when it is built into a model. */
export interface BlockContext {
  readonly dModel: number;
  /** Creates this layer's parameters, named PyTorch-style under e.g. `layers.3.mixer.`. */
  readonly params: ParameterScope;
  readonly rng: SeededRandom;
  readonly backend: BackendCapabilities;
  /**
   * Where the block sits in a model, for initialisations that scale with depth (mamba_ssm's
   * `rescale_prenorm_residual`, recurrentgemma's `final_w_init_variance_scale`). Absent when
   * the model's `depth_scaled_init` is off, or when a block is built on its own (tests): the
   * block then uses its plain, depth-independent init.
   */
  readonly depth?: ModelDepth;
}

/** The model's depth as the references count it. */
export interface ModelDepth {
  /** Residual layers (mixer + optional MLP each): recurrentgemma's `num_layers`. */
  readonly layers: number;
  /** Residual branches (one per mixer, one per MLP): mamba_ssm's `n_residuals_per_layer · n_layer`. */
  readonly residualBranches: number;
}

/** What a block's FLOP count may depend on besides its config. */
export interface FlopShape {
  readonly dModel: number;
  /** The training sequence length (attention's cost grows with it; a recurrence's does not). */
  readonly seqLen: number;
}

/** What a block's recurrent state size may depend on besides its config. */
export interface StateShape {
  readonly dModel: number;
  /** Tokens already stepped through; only states that grow with the sequence depend on it. */
  readonly length: number;
}

/** The bytes of one sequence's `step` state, as a closed form of the config. */
export interface StateSize {
  /** Bytes per sequence (float32: 4 per element) of the state's tensors after `length` steps. */
  readonly bytes: number;
  /**
   * True when the state grows with the sequence (full attention's cache, Hyena's history):
   * `bytes` is then the size at `length`, and a report must say at which length it was taken.
   */
  readonly growsWithLength: boolean;
}

/**
 * A block: a name, a schema for its own config keys (everything in its layer entry except
 * `block` and `mlp`), a factory, and its compute. A block file registers itself; nothing else
 * in the code may switch on its name.
 */
export interface BlockDefinition<Config = unknown> {
  readonly name: string;
  readonly description: string;
  readonly schema: z.ZodType<Config>;
  create(context: BlockContext, config: Config): Mixer;
  /**
   * FLOPs *per token* of the mixer's parallel `forward` over sequences of `shape.seqLen`, and
   * of its backward pass, from the block's own formula (docs/design.md#flop-counting) — what the run's logged
   * compute is made of. Conventions (model/flop-count.ts): a multiply-add is 2 FLOPs; a linear
   * layer's backward is twice its forward; pointwise ops count 1 each, their backward twice
   * that; a recurrence or transform counts the backward its implementation performs; work on
   * the parameters alone (once per batch) is left out; the algorithm's intrinsic cost is
   * counted, not a backend's faster-but-wasteful formulation. The helpers `linearFlops`,
   * `pointwiseFlops`, `depthwiseConvFlops` and `sumFlops` from `@interleave/core` keep this short.
   */
  flops(config: Config, shape: FlopShape): FlopCount;
  /**
   * The recurrent state one sequence holds between `step` calls, in bytes, from the block's own
   * formula: the sum of the sizes of the tensors in the state `step` returns after
   * `shape.length` tokens (plain numbers such as position counters are not counted). The block
   * contract tests check it against the real state. It is the x-axis of "accuracy against
   * state size" (Based, Arora et al. 2024, Figure 2).
   */
  stateBytes(config: Config, shape: StateShape): StateSize;
}

/** Applied independently at every position: works on [B, L, D] and on [B, D]. */
export interface PositionwiseLayer {
  apply<T extends tf.Tensor>(x: T): T;
}

export interface ComponentContext {
  readonly dModel: number;
  readonly params: ParameterScope;
  readonly rng: SeededRandom;
}

/** Builds the pre-norm of every residual branch and the final norm. */
export interface NormFactory {
  create(context: ComponentContext, eps: number): PositionwiseLayer;
  /** FLOPs per token of one norm over `dModel` features (conventions as BlockDefinition.flops). */
  flops(dModel: number): FlopCount;
}

/** Builds the optional MLP that follows a mixer (`mlp:` in a layer entry). */
export interface MlpFactory {
  create(context: ComponentContext, config: MlpConfig): PositionwiseLayer;
  /** FLOPs per token of one MLP (conventions as BlockDefinition.flops). */
  flops(dModel: number, config: MlpConfig): FlopCount;
}
