import type { ModelConfig } from '../config/schema.js';
import type { MlpFactory, NormFactory } from '../registry/block-definition.js';
import {
  type FlopCount,
  linearFlops,
  NO_FLOPS,
  pointwiseFlops,
  SOFTMAX_OPS_PER_ENTRY,
  sumFlops,
} from './flop-count.js';
import type { ResolvedLayer } from './resolve-layers.js';

/** One residual layer's FLOPs per token. */
export interface LayerFlops {
  readonly block: string;
  readonly mixer: FlopCount;
  /** The MLP after the mixer; zero when the layer has none. */
  readonly mlp: FlopCount;
  /** The pre-norm of each residual branch and its residual add. */
  readonly normsAndResiduals: FlopCount;
  readonly total: FlopCount;
}

/** A model's FLOPs per training token (forward, backward, both), with where they go. */
export interface ModelFlops extends FlopCount {
  /** forward + backward: what one training token costs. */
  readonly total: number;
  readonly layers: readonly LayerFlops[];
  /** The lookup is free; its backward adds each token's gradient into its row. */
  readonly embedding: FlopCount;
  readonly finalNorm: FlopCount;
  /** The projection to the vocabulary (tied or not: the same product). */
  readonly head: FlopCount;
  /** Log-softmax cross-entropy over the vocabulary. */
  readonly loss: FlopCount;
}

export interface ModelFlopsOptions {
  readonly config: Pick<ModelConfig, 'd_model' | 'vocab_size' | 'max_position_embeddings'>;
  readonly layers: readonly ResolvedLayer[];
  readonly norm: NormFactory;
  readonly mlp: MlpFactory;
  /** The training sequence length (attention's cost per token depends on it). */
  readonly seqLen: number;
}

/**
 * FLOPs per token of one training step of the model (docs/design.md#flop-counting): every layer's mixer from its
 * block's own `flops`, the norms and MLPs from theirs, the embedding, the head and the loss.
 * Conventions in flop-count.ts. Multiply by the training tokens for a run's compute.
 */
export function modelFlopsPerToken({ config, layers, norm, mlp, seqLen }: ModelFlopsOptions): ModelFlops {
  const dModel = config.d_model;
  const normFlops = norm.flops(dModel);
  const residualAdd = pointwiseFlops(dModel);
  const perLayer = layers.map((layer): LayerFlops => {
    const mixer = layer.block.flops(layer.config, { dModel, seqLen });
    const mlpFlops = layer.mlp ? mlp.flops(dModel, layer.mlp) : NO_FLOPS;
    const branches = layer.mlp ? 2 : 1;
    const normsAndResiduals = sumFlops(...Array.from({ length: branches }, () => sumFlops(normFlops, residualAdd)));
    return {
      block: layer.block.name,
      mixer,
      mlp: mlpFlops,
      normsAndResiduals,
      total: sumFlops(mixer, mlpFlops, normsAndResiduals),
    };
  });
  // The lookup is free, its backward adds each token's gradient into its row; learned
  // positions add their row (D) and take the same gradient (D).
  const positions = (config.max_position_embeddings ?? 0) > 0;
  const embedding = positions ? { forward: dModel, backward: 2 * dModel } : { forward: 0, backward: dModel };
  const head = linearFlops(dModel, config.vocab_size);
  const loss = pointwiseFlops(SOFTMAX_OPS_PER_ENTRY * config.vocab_size);
  const all = sumFlops(...perLayer.map((layer) => layer.total), embedding, normFlops, head, loss);
  return {
    forward: all.forward,
    backward: all.backward,
    total: all.forward + all.backward,
    layers: perLayer,
    embedding,
    finalNorm: normFlops,
    head,
    loss,
  };
}

/** e.g. 1234567 → `1.23 MFLOP`. */
export function formatFlops(flops: number): string {
  const units = ['', 'k', 'M', 'G', 'T', 'P', 'E'];
  let value = flops;
  let unit = 0;
  while (Math.abs(value) >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit === 0 ? String(value) : value.toFixed(2)} ${units[unit]}FLOP`;
}
