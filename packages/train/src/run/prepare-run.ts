import { registerBuiltinBlocks } from '@interleave/blocks';
import {
  applyPlugin,
  type Container,
  createContainer,
  loadPlugins,
  REGISTRIES,
  type ResolvedLayer,
  registryOf,
  resolveByName,
  resolveLayers,
  type SourceLocation,
  type TaskDefinition,
} from '@interleave/core';
import { registerBuiltinTasks } from '@interleave/eval';
import { type LoadedExperiment, loadExperimentConfig } from '../config/experiment-config.js';
import { type ResolvedEvaluation, resolveEvaluations } from './evaluations.js';

/** A config that has been fully checked — file, plugins, every layer, the task — before any tensor exists. */
export interface PreparedRun {
  readonly loaded: LoadedExperiment;
  readonly container: Container;
  readonly layers: readonly ResolvedLayer[];
  readonly task: { readonly definition: TaskDefinition<unknown>; readonly config: unknown };
  /** The `evals:` entries, run after training. */
  readonly evaluations: readonly ResolvedEvaluation[];
}

/** config → container: loads and validates everything a run needs, failing fast with file:line errors. */
export async function prepareRun(configFile: string, overrides: readonly string[] = []): Promise<PreparedRun> {
  return prepareLoadedRun(await loadExperimentConfig(configFile, [...overrides]));
}

/**
 * `prepareRun` for a config already loaded (from a file, resolved with overrides, or config
 * data such as a sweep trial's): plugins, layers, task and evaluations are checked against it,
 * errors located where `loaded` says its values came from.
 */
export async function prepareLoadedRun(loaded: LoadedExperiment): Promise<PreparedRun> {
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

function resolveTask(loaded: LoadedExperiment, container: Container): PreparedRun['task'] {
  const { name, ...keys } = loaded.config.task;
  return resolveByName(registryOf(container, REGISTRIES.tasks), name, keys, {
    path: ['task'],
    nameKey: 'name',
    source: loaded,
  });
}
