import type { Container } from 'inversify';
import { ConfigError } from '../config/config-error.js';
import { expandLayers } from '../config/layers.js';
import type { ConfigSource } from '../config/load-config.js';
import type { MlpConfig, ModelConfig } from '../config/schema.js';
import type { BlockDefinition } from '../registry/block-definition.js';
import type { BlockRegistry } from '../registry/container.js';
import { TOKENS } from '../registry/tokens.js';

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
  const registry = container.get<BlockRegistry>(TOKENS.BlockRegistry);
  return expandLayers(layers).map(({ entry, path }) => {
    const { block: name, mlp, ...blockKeys } = entry;
    const block = registry.get(name);
    if (block === undefined) {
      throw new ConfigError(
        `unknown block '${name}' (registered: ${registry.names().join(', ') || 'none'}; plugins can register more)`,
        [...path, 'block'],
        source.locate([...path, 'block']),
      );
    }
    const config = source.validate(block.schema, blockKeys, path);
    return { block, config, mlp: mlp ?? null, path };
  });
}
