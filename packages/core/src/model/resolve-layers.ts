import type { Container } from 'inversify';
import { expandLayers } from '../config/layers.js';
import type { ConfigSource } from '../config/load-config.js';
import type { MlpConfig, ModelConfig } from '../config/schema.js';
import type { BlockDefinition } from '../registry/block-definition.js';
import { REGISTRIES } from '../registry/container.js';
import { registryOf } from '../registry/registry-key.js';
import { resolveByName } from '../registry/resolve-by-name.js';

/** One residual layer, its block found in the registry and its keys checked by the block's schema. */
export interface ResolvedLayer {
  readonly block: BlockDefinition<unknown>;
  readonly config: unknown;
  readonly mlp: MlpConfig | null;
  /** Where the layer was written, e.g. `model.layers[0].pattern[1]`. */
  readonly path: ReadonlyArray<string | number>;
}

/**
 * Expands `repeat`/`pattern` and validates every layer against its block's own schema, so a
 * typo in any layer is reported with its file, key path and line before anything is built.
 */
export function resolveLayers(
  layers: ModelConfig['layers'],
  container: Container,
  source: ConfigSource,
): ResolvedLayer[] {
  const registry = registryOf(container, REGISTRIES.blocks);
  return expandLayers(layers).map(({ entry, path }) => {
    const { block: name, mlp, ...blockKeys } = entry;
    const { definition: block, config } = resolveByName(registry, name, blockKeys, { path, nameKey: 'block', source });
    return { block, config, mlp: mlp ?? null, path };
  });
}
