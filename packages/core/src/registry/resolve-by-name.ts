import type { z } from 'zod';
import { ConfigError, type KeyPath } from '../config/config-error.js';
import type { ConfigSource } from '../config/load-config.js';
import type { NamedRegistry } from './named-registry.js';

/** A definition found by the name a config entry gives, and the entry's own keys as its schema parsed them. */
export interface ResolvedByName<Definition> {
  readonly definition: Definition;
  readonly config: unknown;
}

/** Where the entry sits in the config: its path, and the key that names the definition. */
export interface EntryPlace {
  readonly path: KeyPath;
  /** e.g. `block` in a layer entry, `name` in `task:`, `task` in an `evals:` entry. */
  readonly nameKey: string;
  readonly source: ConfigSource;
}

/**
 * The one way a config entry becomes a registered definition (a layer's block, the task, an
 * evaluation): looks `name` up in `registry`, then checks `keys` against that definition's own
 * schema. An unknown name or a bad key is a ConfigError with the entry's file, key path and line.
 */
export function resolveByName<Definition extends { readonly name: string; readonly schema: z.ZodType<unknown> }>(
  registry: NamedRegistry<Definition>,
  name: string,
  keys: Record<string, unknown>,
  place: EntryPlace,
): ResolvedByName<Definition> {
  const definition = registry.get(name);
  if (definition === undefined) {
    const namePath = [...place.path, place.nameKey];
    throw new ConfigError(
      `unknown ${registry.kind} '${name}' (registered: ${registry.describeNames()}; plugins can register more)`,
      namePath,
      place.source.locate(namePath),
    );
  }
  return { definition, config: place.source.validate(definition.schema, keys, place.path) };
}
