import { Container } from 'inversify';

export type { Container } from 'inversify';

import { InterleaveError } from '../errors.js';
import type { BlockDefinition, MlpFactory, NormFactory } from './block-definition.js';
import type { EvaluationDefinition } from './evaluation-definition.js';
import type { NamedRegistry } from './named-registry.js';
import { bindRegistry, defineRegistry, type RegistryKey, registryOf } from './registry-key.js';
import type { TaskDefinition } from './task-definition.js';
import { TOKENS } from './tokens.js';

// biome-ignore lint/suspicious/noExplicitAny: each definition carries its own config type
export type BlockRegistry = NamedRegistry<BlockDefinition<any>>;
// biome-ignore lint/suspicious/noExplicitAny: each definition carries its own config type
export type TaskRegistry = NamedRegistry<TaskDefinition<any>>;
// biome-ignore lint/suspicious/noExplicitAny: each definition carries its own config type
export type EvaluationRegistry = NamedRegistry<EvaluationDefinition<any>>;

/** The registries core resolves by name; plugins extend them, tests may replace them. */
export const REGISTRIES = {
  // biome-ignore lint/suspicious/noExplicitAny: see BlockRegistry
  blocks: defineRegistry<BlockDefinition<any>>('block', {
    token: TOKENS.BlockRegistry,
    check: (definition) => {
      requireFlops(definition, `block '${definition.name}'`, 'flops(config, { dModel, seqLen })');
      requireStateBytes(definition);
    },
  }),
  // biome-ignore lint/suspicious/noExplicitAny: see TaskRegistry
  tasks: defineRegistry<TaskDefinition<any>>('task', { token: TOKENS.TaskRegistry }),
  // biome-ignore lint/suspicious/noExplicitAny: see EvaluationRegistry
  evaluations: defineRegistry<EvaluationDefinition<any>>('evaluation', { token: TOKENS.EvaluationRegistry }),
} as const;

/** What a plugin (built-in or from `plugins:`) receives to register its pieces. */
export interface PluginApi {
  readonly container: Container;
  /** Adds `definition` to the registry `key` names (any registry, including ones declared after core). */
  register<Definition extends { readonly name: string }>(key: RegistryKey<Definition>, definition: Definition): void;
  /** Puts `definition` in place of the entry already registered under its name. */
  replace<Definition extends { readonly name: string }>(key: RegistryKey<Definition>, definition: Definition): void;
  // biome-ignore lint/suspicious/noExplicitAny: see BlockRegistry
  registerBlock(definition: BlockDefinition<any>): void;
  // biome-ignore lint/suspicious/noExplicitAny: see TaskRegistry
  registerTask(definition: TaskDefinition<any>): void;
  // biome-ignore lint/suspicious/noExplicitAny: see EvaluationRegistry
  registerEvaluation(definition: EvaluationDefinition<any>): void;
  /** Sets the norm used before every mixer/MLP and at the end of the model. */
  provideNorm(factory: NormFactory): void;
  /** Sets the MLP built for layer entries with `mlp:`. */
  provideMlp(factory: MlpFactory): void;
}

/** A plugin module's default export (or its named export `register`). */
export type Plugin = (api: PluginApi) => void | Promise<void>;

/** A container with empty block, task and evaluation registries; plugins fill them. */
export function createContainer(): Container {
  const container = new Container();
  bindRegistry(container, REGISTRIES.blocks);
  bindRegistry(container, REGISTRIES.tasks);
  bindRegistry(container, REGISTRIES.evaluations);
  return container;
}

export function pluginApi(container: Container): PluginApi {
  const register = <Definition extends { readonly name: string }>(
    key: RegistryKey<Definition>,
    definition: Definition,
  ): void => {
    key.check?.(definition);
    registryOf(container, key).register(definition);
  };
  const replace = <Definition extends { readonly name: string }>(
    key: RegistryKey<Definition>,
    definition: Definition,
  ): void => {
    key.check?.(definition);
    registryOf(container, key).replace(definition);
  };
  const provide = <T>(token: symbol, value: T): void => {
    if (container.isBound(token)) container.rebind<T>(token).toConstantValue(value);
    else container.bind<T>(token).toConstantValue(value);
  };
  return {
    container,
    register,
    replace,
    registerBlock: (definition) => register(REGISTRIES.blocks, definition),
    registerTask: (definition) => register(REGISTRIES.tasks, definition),
    registerEvaluation: (definition) => register(REGISTRIES.evaluations, definition),
    provideNorm: (factory) => {
      requireFlops(factory, 'the norm passed to provideNorm', 'flops(dModel)');
      provide(TOKENS.NormFactory, factory);
    },
    provideMlp: (factory) => {
      requireFlops(factory, 'the MLP passed to provideMlp', 'flops(dModel, config)');
      provide(TOKENS.MlpFactory, factory);
    },
  };
}

/**
 * TypeScript plugins cannot omit `flops`; JavaScript ones can, and would otherwise fail only
 * when a run computes its FLOPs. Every piece of a model declares its compute (docs/design.md#flop-counting).
 */
function requireFlops(piece: object, what: string, signature: string): void {
  if (typeof (piece as { flops?: unknown }).flops !== 'function') {
    throw new InterleaveError(
      `${what} has no ${signature} method: every block, norm and MLP declares its FLOPs per token ` +
        '(see BlockDefinition.flops in @interleave/core)',
    );
  }
}

/** As requireFlops: a JavaScript block could omit its state size and fail only in `inspect`. */
function requireStateBytes(definition: object & { name: string }): void {
  if (typeof (definition as { stateBytes?: unknown }).stateBytes !== 'function') {
    throw new InterleaveError(
      `block '${definition.name}' has no stateBytes(config, { dModel, length }) method: every block declares ` +
        'the bytes of its step state per sequence (see BlockDefinition.stateBytes in @interleave/core)',
    );
  }
}

export async function applyPlugin(container: Container, plugin: Plugin): Promise<void> {
  await plugin(pluginApi(container));
}
