import * as tf from '@tensorflow/tfjs';
import type { Container } from 'inversify';
import type { BackendCapabilities } from '../backend/capabilities.js';
import type { ModelConfig } from '../config/schema.js';
import { InterleaveError } from '../errors.js';
import { matmul } from '../ops/matmul.js';
import type { SeededRandom } from '../random/seeded-random.js';
import type { Mixer, MixerState, MlpFactory, NormFactory, PositionwiseLayer } from '../registry/block-definition.js';
import { TOKENS } from '../registry/tokens.js';
import { type ActivationCheckpointing, recomputedInBackward } from './activation-checkpointing.js';
import { embeddingLookup } from './embedding.js';
import { headChunkRows } from './head-chunks.js';
import { normalInit } from './initializers.js';
import { type ModelFlops, modelFlopsPerToken } from './model-flops.js';
import { ParameterStore } from './parameter-store.js';
import type { ResolvedLayer } from './resolve-layers.js';
import { type ModelStateSize, modelStateBytes } from './state-size.js';

interface ResidualLayer {
  readonly norm: PositionwiseLayer;
  readonly mixer: Mixer;
  readonly mlp: { readonly norm: PositionwiseLayer; readonly layer: PositionwiseLayer } | null;
  /** Every parameter the layer created (`layers.<i>.*`): what a recomputed layer takes gradients for. */
  readonly parameters: readonly tf.Variable[];
}

/** How `hidden` runs the residual layers. */
export interface HiddenOptions {
  /** `layers`: each residual layer is recomputed in the backward pass (activation-checkpointing.ts). */
  readonly activationCheckpointing?: ActivationCheckpointing;
}

/** The recurrent state of the whole model: one mixer state per layer. */
export interface ModelState {
  readonly layers: MixerState[];
  /** Tokens stepped so far (where learned absolute positions are looked up); 0 when absent. */
  readonly position?: number;
}

/**
 * tokens [B, L] → embedding → pre-norm residual layers → RMSNorm → tied or untied head → logits
 * [B, L, V] (docs/design.md#model-skeleton). Parameters are named as in PyTorch: `embedding.weight`,
 * `layers.<i>.norm.weight`, `layers.<i>.mixer.*`, `layers.<i>.mlp_norm.weight`, `layers.<i>.mlp.*`,
 * `norm_f.weight`, `lm_head.weight` (untied only).
 */
export class LanguageModel {
  private constructor(
    readonly config: ModelConfig,
    readonly parameters: ParameterStore,
    private readonly backend: BackendCapabilities,
    private readonly embedding: tf.Variable,
    /** Learned absolute positions [max_position_embeddings, D], or null. */
    private readonly positions: tf.Variable | null,
    private readonly layers: readonly ResidualLayer[],
    private readonly finalNorm: PositionwiseLayer,
    private readonly head: tf.Variable,
    /** What the FLOP count reads: the layers as resolved and the norm and MLP factories. */
    private readonly components: { layers: readonly ResolvedLayer[]; norm: NormFactory; mlp: MlpFactory },
  ) {}

  /** Builds the model from resolved layers, with every parameter drawn from `rng`. */
  static build(options: {
    container: Container;
    config: ModelConfig;
    layers: readonly ResolvedLayer[];
    rng: SeededRandom;
    backend: BackendCapabilities;
  }): LanguageModel {
    const { container, config, rng, backend } = options;
    if (!container.isBound(TOKENS.NormFactory) || !container.isBound(TOKENS.MlpFactory)) {
      throw new InterleaveError('no norm or MLP is registered: load @interleave/blocks (registerBuiltinBlocks) first');
    }
    const norms = container.get<NormFactory>(TOKENS.NormFactory);
    const mlps = container.get<MlpFactory>(TOKENS.MlpFactory);
    const store = new ParameterStore(rng.fork('parameters'));
    const root = store.root();
    const dModel = config.d_model;
    const component = (name: string) => ({ dModel, params: root.scope(name), rng: rng.fork(name) });
    const depth =
      config.depth_scaled_init !== false
        ? {
            layers: options.layers.length,
            residualBranches: options.layers.length + options.layers.filter((layer) => layer.mlp).length,
          }
        : undefined;
    try {
      const embedding = root.create('embedding.weight', [config.vocab_size, dModel], normalInit(0.02));
      const maxPositions = config.max_position_embeddings ?? 0;
      // Zoology initialises every nn.Embedding, positions included, with N(0, 0.02²).
      const positions =
        maxPositions > 0 ? root.create('position_embeddings.weight', [maxPositions, dModel], normalInit(0.02)) : null;
      const layers = options.layers.map((layer, index): ResidualLayer => {
        const prefix = `layers.${index}`;
        const created = store.list().length;
        const norm = norms.create(component(`${prefix}.norm`), config.norm_eps);
        const mixer = layer.block.create({ ...component(`${prefix}.mixer`), backend, depth }, layer.config);
        const mlp = layer.mlp
          ? {
              norm: norms.create(component(`${prefix}.mlp_norm`), config.norm_eps),
              layer: mlps.create(component(`${prefix}.mlp`), layer.mlp),
            }
          : null;
        const parameters = store
          .list()
          .slice(created)
          .map((parameter) => parameter.variable);
        return { norm, mixer, mlp, parameters };
      });
      const finalNorm = norms.create(component('norm_f'), config.norm_eps);
      const head = config.tie_embeddings
        ? embedding
        : root.create('lm_head.weight', [config.vocab_size, dModel], normalInit(0.02));
      return new LanguageModel(config, store, backend, embedding, positions, layers, finalNorm, head, {
        layers: options.layers,
        norm: norms,
        mlp: mlps,
      });
    } catch (error) {
      store.dispose();
      throw error;
    }
  }

  /** tokens [B, L] int32 → logits [B, L, V]. */
  forward(tokens: tf.Tensor2D): tf.Tensor3D {
    return tf.tidy(() => this.headLogits(this.hidden(tokens)));
  }

  /**
   * tokens [B, L] int32 → the arg-max token at every position [B, L] int32, with the head run in
   * row chunks (head-chunks.ts) so that no logits tensor exceeds the backend's binding limit.
   */
  predict(tokens: tf.Tensor2D, budgetBytes?: number): tf.Tensor2D {
    return tf.tidy(() => {
      const hidden = this.hidden(tokens);
      const [batch, length, dModel] = hidden.shape;
      const chunks = headChunkRows(batch * length, this.config.vocab_size, budgetBytes);
      const flat = hidden.reshape([batch * length, dModel]) as tf.Tensor2D;
      const parts = chunks.length === 1 ? [flat] : (tf.split(flat, chunks) as tf.Tensor2D[]);
      const predictions = parts.map((part) => this.headLogits(part).argMax(1));
      return tf.concat(predictions).reshape([batch, length]);
    });
  }

  /** tokens [B, L] int32 → the final-normed hidden states [B, L, D] that the head reads. */
  hidden(tokens: tf.Tensor2D, options: HiddenOptions = {}): tf.Tensor3D {
    const recompute = options.activationCheckpointing === 'layers';
    return tf.tidy(() => {
      let x = embeddingLookup(this.embedding as tf.Tensor2D, tokens, this.backend) as tf.Tensor3D;
      if (this.positions !== null) {
        const length = tokens.shape[1];
        this.checkPosition(length - 1);
        x = x.add(this.positions.slice([0, 0], [length, this.config.d_model]));
      }
      for (const layer of this.layers) {
        const forward = (input: tf.Tensor3D) => residualForward(layer, input);
        x = recompute ? recomputedInBackward(forward, x, layer.parameters) : forward(x);
      }
      return this.finalNorm.apply(x);
    });
  }

  /** Analytic FLOPs per training token at sequence length `seqLen` (docs/design.md#flop-counting, model-flops.ts). */
  flopsPerToken(seqLen: number): ModelFlops {
    return modelFlopsPerToken({ config: this.config, seqLen, ...this.components });
  }

  /** The recurrent state per sequence after `length` tokens, by layer (see state-size.ts). */
  stateBytesPerSequence(length: number): ModelStateSize {
    return modelStateBytes({ config: this.config, layers: this.components.layers, length });
  }

  initState(batchSize: number): ModelState {
    return { layers: this.layers.map((layer) => layer.mixer.initState(batchSize)), position: 0 };
  }

  /** One token per sequence: tokens [B] int32 → logits [B, V] and the next state (the old one is kept). */
  step(tokens: tf.Tensor1D, state: ModelState): { logits: tf.Tensor2D; state: ModelState } {
    const next: MixerState[] = [];
    const position = state.position ?? 0;
    if (this.positions !== null) this.checkPosition(position);
    const logits = tf.tidy(() => {
      let x = embeddingLookup(this.embedding as tf.Tensor2D, tokens, this.backend) as tf.Tensor2D;
      if (this.positions !== null) x = x.add(this.positions.slice([position, 0], [1, this.config.d_model]));
      this.layers.forEach((layer, index) => {
        const out = layer.mixer.step(layer.norm.apply(x), state.layers[index] as MixerState);
        keepState(out.state);
        next.push(out.state);
        x = x.add(out.y);
        if (layer.mlp) x = x.add(layer.mlp.layer.apply(layer.mlp.norm.apply(x)));
      });
      return this.headLogits(this.finalNorm.apply(x));
    });
    return { logits, state: { layers: next, position: position + 1 } };
  }

  /**
   * The position from which `step` does the same GPU work at every token, for a state of this
   * model (eval's step-mode replay): the largest of the mixers' `stepStationaryFrom`, 0 for a mixer
   * whose state holds tensors only. Undefined when some mixer's state holds numbers it keeps
   * reading (attention's position), or when the model adds learned positions (the step reads its
   * position).
   */
  stepStationaryFrom(state: ModelState): number | undefined {
    if (this.positions !== null) return undefined;
    let from = 0;
    for (const [index, layer] of this.layers.entries()) {
      const declared = layer.mixer.stepStationaryFrom;
      if (declared !== undefined) from = Math.max(from, declared);
      else if (holdsNumbers(state.layers[index] as MixerState)) return undefined;
    }
    return from;
  }

  dispose(): void {
    this.parameters.dispose();
  }

  private checkPosition(position: number): void {
    const max = this.config.max_position_embeddings ?? 0;
    if (position >= max) {
      throw new InterleaveError(
        `position ${position} is past model.max_position_embeddings (${max}): learned absolute positions ` +
          'are defined only up to there; raise it or use a block with relative positions (RoPE)',
      );
    }
  }

  /** Hidden states [..., D] → logits [..., V] through the tied or untied head. */
  headLogits<T extends tf.Tensor2D | tf.Tensor3D>(hidden: T): T {
    const shape = hidden.shape;
    const dModel = this.config.d_model;
    const flat = matmul(hidden.reshape([-1, dModel]), this.head, false, true);
    return flat.reshape([...shape.slice(0, -1), this.config.vocab_size]) as T;
  }
}

/** One residual layer, the unit that activation checkpointing recomputes: x → x + mixer(norm(x)), then the MLP branch. */
function residualForward(layer: ResidualLayer, x: tf.Tensor3D): tf.Tensor3D {
  let y: tf.Tensor3D = x.add(layer.mixer.forward(layer.norm.apply(x)));
  if (layer.mlp) y = y.add(layer.mlp.layer.apply(layer.mlp.norm.apply(y)));
  return y;
}

function holdsNumbers(state: MixerState): boolean {
  return Object.values(state).some((value) =>
    typeof value === 'number' ? true : value instanceof tf.Tensor ? false : holdsNumbers(value),
  );
}

function keepState(state: MixerState): void {
  for (const value of Object.values(state)) {
    if (value instanceof tf.Tensor) tf.keep(value);
    else if (typeof value === 'object') keepState(value);
  }
}
