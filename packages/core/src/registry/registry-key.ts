import type { Container } from 'inversify';
import { NamedRegistry } from './named-registry.js';

/**
 * A registry a plugin may extend, as the container knows it: the token its NamedRegistry is
 * bound under, the word its messages use, and a check every entry must pass (whether it is
 * registered or replaces another). Declare one with `defineRegistry`; get it with `registryOf`.
 */
export interface RegistryKey<Definition extends { readonly name: string }> {
  readonly token: symbol;
  readonly kind: string;
  /** Throws an InterleaveError naming what is wrong with `definition`. */
  readonly check?: (definition: Definition) => void;
}

/**
 * Declares a registry. A later kind (tokenizers, data stores) is one line where its definition
 * type lives, e.g. `export const TOKENIZERS = defineRegistry<TokenizerDefinition>('tokenizer')`;
 * the container binds it the first time anything asks for it, so `createContainer` needs no edit.
 */
export function defineRegistry<Definition extends { readonly name: string }>(
  kind: string,
  options: { token?: symbol; check?: (definition: Definition) => void } = {},
): RegistryKey<Definition> {
  const token = options.token ?? Symbol.for(`interleave.registry.${kind}`);
  return options.check === undefined ? { token, kind } : { token, kind, check: options.check };
}

/**
 * Binds an empty registry for `key`, one per container (singleton scope), unless one is bound
 * already: a test may have bound its own with `container.bind(key.token)` or `container.rebind`.
 */
export function bindRegistry<Definition extends { readonly name: string }>(
  container: Container,
  key: RegistryKey<Definition>,
): void {
  if (container.isBound(key.token)) return;
  container
    .bind<NamedRegistry<Definition>>(key.token)
    .toDynamicValue(() => new NamedRegistry<Definition>(key.kind))
    .inSingletonScope();
}

/** The registry the container holds for `key` (bound on first use). Every lookup by name goes through here. */
export function registryOf<Definition extends { readonly name: string }>(
  container: Container,
  key: RegistryKey<Definition>,
): NamedRegistry<Definition> {
  bindRegistry(container, key);
  return container.get<NamedRegistry<Definition>>(key.token);
}
