import { Container } from 'inversify';

export type { Container } from 'inversify';

import type { BlockDefinition, MlpFactory, NormFactory } from './block-definition.js';
import { NamedRegistry } from './named-registry.js';
import type { TaskDefinition } from './task-definition.js';
import { TOKENS } from './tokens.js';

// biome-ignore lint/suspicious/noExplicitAny: each definition carries its own config type
export type BlockRegistry = NamedRegistry<BlockDefinition<any>>;
// biome-ignore lint/suspicious/noExplicitAny: each definition carries its own config type
export type TaskRegistry = NamedRegistry<TaskDefinition<any>>;

/** What a plugin (built-in or from `plugins:`) receives to register its pieces. */
export interface PluginApi {
  readonly container: Container;
  // biome-ignore lint/suspicious/noExplicitAny: see BlockRegistry
  registerBlock(definition: BlockDefinition<any>): void;
  // biome-ignore lint/suspicious/noExplicitAny: see TaskRegistry
  registerTask(definition: TaskDefinition<any>): void;
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
  return container;
}

export function pluginApi(container: Container): PluginApi {
  const rebind = <T>(token: symbol, value: T) => {
    if (container.isBound(token)) container.unbind(token);
    container.bind<T>(token).toConstantValue(value);
  };
  return {
    container,
    registerBlock: (definition) => container.get<BlockRegistry>(TOKENS.BlockRegistry).register(definition),
    registerTask: (definition) => container.get<TaskRegistry>(TOKENS.TaskRegistry).register(definition),
    provideNorm: (factory) => rebind(TOKENS.NormFactory, factory),
    provideMlp: (factory) => rebind(TOKENS.MlpFactory, factory),
  };
}

export async function applyPlugin(container: Container, plugin: Plugin): Promise<void> {
  await plugin(pluginApi(container));
}
