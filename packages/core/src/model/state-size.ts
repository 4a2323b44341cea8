import type { ModelConfig } from '../config/schema.js';
import type { StateSize } from '../registry/block-definition.js';
import type { ResolvedLayer } from './resolve-layers.js';

/** Bytes of one float32 element: every built-in state is float32. */
export const FLOAT32_BYTES = 4;

/** A state of `elements` float32 numbers per sequence. */
export function float32State(elements: number, growsWithLength = false): StateSize {
  return { bytes: FLOAT32_BYTES * elements, growsWithLength };
}

/** One residual layer's recurrent state per sequence (MLPs are positionwise and hold none). */
export interface LayerStateSize extends StateSize {
  readonly block: string;
}

/** A model's recurrent state per sequence: what `step` carries from one token to the next. */
export interface ModelStateSize extends StateSize {
  readonly layers: readonly LayerStateSize[];
  /** The sequence length the growing states were sized at. */
  readonly length: number;
}

/**
 * Every layer's state per sequence after `length` tokens, from each block's own closed form
 * (`BlockDefinition.stateBytes`), and their total. `growsWithLength` is true when any layer's
 * state does, so that a report can say the figure holds at `length` only.
 */
export function modelStateBytes(options: {
  readonly config: Pick<ModelConfig, 'd_model'>;
  readonly layers: readonly ResolvedLayer[];
  readonly length: number;
}): ModelStateSize {
  const { config, layers, length } = options;
  const perLayer = layers.map(
    (layer): LayerStateSize => ({
      block: layer.block.name,
      ...layer.block.stateBytes(layer.config, { dModel: config.d_model, length }),
    }),
  );
  return {
    layers: perLayer,
    bytes: perLayer.reduce((sum, layer) => sum + layer.bytes, 0),
    growsWithLength: perLayer.some((layer) => layer.growsWithLength),
    length,
  };
}
