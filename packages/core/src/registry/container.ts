import { Container } from 'inversify';

export type { Container } from 'inversify';

import { InterleaveError } from '../errors.js';
import type { BlockDefinition, MlpFactory, NormFactory } from './block-definition.js';
import type { EvaluationDefinition } from './evaluation-definition.js';
import { NamedRegistry } from './named-registry.js';
import type { TaskDefinition } from './task-definition.js';
import { TOKENS } from './tokens.js';

// biome-ignore lint/suspicious/noExplicitAny: each definition carries its own config type
export type BlockRegistry = NamedRegistry<BlockDefinition<any>>;
// biome-ignore lint/suspicious/noExplicitAny: each definition carries its own config type
export type TaskRegistry = NamedRegistry<TaskDefinition<any>>;
// biome-ignore lint/suspicious/noExplicitAny: each definition carries its own config type
export type EvaluationRegistry = NamedRegistry<EvaluationDefinition<any>>;

/** What a plugin (built-in or from `plugins:`) receives to register its pieces. */
export interface PluginApi {
  readonly container: Container;
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

/** A container with empty registries; plugins fill it. */
export function createContainer(): Container {
  const container = new Container();
  container.bind<BlockRegistry>(TOKENS.BlockRegistry).toConstantValue(new NamedRegistry('block'));
  container.bind<TaskRegistry>(TOKENS.TaskRegistry).toConstantValue(new NamedRegistry('task'));
  container.bind<EvaluationRegistry>(TOKENS.EvaluationRegistry).toConstantValue(new NamedRegistry('evaluation'));
  return container;
}

export function pluginApi(container: Container): PluginApi {
  const rebind = <T>(token: symbol, value: T) => {
    if (container.isBound(token)) container.unbind(token);
    container.bind<T>(token).toConstantValue(value);
  };
  return {
    container,
    registerBlock: (definition) => {
      requireFlops(definition, `block '${definition.name}'`, 'flops(config, { dModel, seqLen })');
      requireStateBytes(definition);
      container.get<BlockRegistry>(TOKENS.BlockRegistry).register(definition);
    },
    registerTask: (definition) => container.get<TaskRegistry>(TOKENS.TaskRegistry).register(definition),
    registerEvaluation: (definition) =>
      container.get<EvaluationRegistry>(TOKENS.EvaluationRegistry).register(definition),
    provideNorm: (factory) => {
      requireFlops(factory, 'the norm passed to provideNorm', 'flops(dModel)');
      rebind(TOKENS.NormFactory, factory);
    },
    provideMlp: (factory) => {
      requireFlops(factory, 'the MLP passed to provideMlp', 'flops(dModel, config)');
      rebind(TOKENS.MlpFactory, factory);
    },
  };
}

/**
 * TypeScript plugins cannot omit `flops`; JavaScript ones can, and would otherwise fail only
 * when a run computes its FLOPs. Every piece of a model declares its compute (SPEC §4.3).
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
