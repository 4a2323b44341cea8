import { registerBuiltinBlocks } from '@interleave/blocks';
import {
  applyPlugin,
  ConfigError,
  type Container,
  createContainer,
  type LoadedConfig,
  loadConfig,
  loadPlugins,
  type ResolvedLayer,
  resolveLayers,
  type SourceLocation,
  type TaskDefinition,
  type TaskRegistry,
  TOKENS,
} from '@interleave/core';
import { registerBuiltinTasks } from '@interleave/eval';
import { type ResolvedEvaluation, resolveEvaluations } from './evaluations.js';

/** A config that has been fully checked — file, plugins, every layer, the task — before any tensor exists. */
export interface PreparedRun {
  readonly loaded: LoadedConfig;
  readonly container: Container;
  readonly layers: readonly ResolvedLayer[];
  readonly task: { readonly definition: TaskDefinition<unknown>; readonly config: unknown };
  /** The `evals:` entries, run after training. */
  readonly evaluations: readonly ResolvedEvaluation[];
}

/** config → container: loads and validates everything a run needs, failing fast with file:line errors. */
export async function prepareRun(configFile: string, overrides: readonly string[] = []): Promise<PreparedRun> {
  return prepareLoadedRun(await loadConfig(configFile, [...overrides]));
}

/**
 * `prepareRun` for a config already loaded (from a file, resolved with overrides, or config
 * data such as a sweep trial's): plugins, layers, task and evaluations are checked against it,
 * errors located where `loaded` says its values came from.
 */
export async function prepareLoadedRun(loaded: LoadedConfig): Promise<PreparedRun> {
  const container = await createRunContainer(loaded.config.plugins, (index) => loaded.locate(['plugins', index]));
  const layers = resolveLayers(loaded.config.model.layers, container, loaded);
  const task = resolveTask(loaded, container);
  return { loaded, container, layers, task, evaluations: resolveEvaluations(loaded, container) };
}

/** A container with the built-in blocks and tasks, then the config's plugins. */
export async function createRunContainer(
  plugins: readonly string[],
  locate: (index: number) => SourceLocation,
): Promise<Container> {
  const container = createContainer();
  await applyPlugin(container, registerBuiltinBlocks);
  await applyPlugin(container, registerBuiltinTasks);
  await loadPlugins(container, plugins, locate);
  return container;
}

function resolveTask(loaded: LoadedConfig, container: Container): PreparedRun['task'] {
  const registry = container.get<TaskRegistry>(TOKENS.TaskRegistry);
  const { name, ...keys } = loaded.config.task;
  const definition = registry.get(name);
  if (definition === undefined) {
    throw new ConfigError(
      `unknown task '${name}' (registered tasks: ${registry.names().join(', ')})`,
      ['task', 'name'],
      loaded.locate(['task', 'name']),
    );
  }
  return { definition, config: loaded.validate(definition.schema, keys, ['task']) };
}
