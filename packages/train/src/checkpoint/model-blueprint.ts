import { registerBuiltinBlocks } from '@interleave/blocks';
import {
  applyPlugin,
  type BlockRegistry,
  type Container,
  createContainer,
  expandLayers,
  formatKeyPath,
  InterleaveError,
  type KeyPath,
  loadConfig,
  loadPlugins,
  type ModelConfig,
  modelSchema,
  type ResolvedLayer,
  resolveLayers,
  type SourceLocation,
  TOKENS,
} from '@interleave/core';
import { registerBuiltinTasks } from '@interleave/eval';
import { z } from 'zod';
import { configMetadata, METADATA_KEYS } from './checkpoint.js';

/** Everything needed to build a model of the right shape before its weights are loaded. */
export interface ModelBlueprint {
  /** Where the config came from, for messages: a file, or a weights file's metadata key. */
  readonly source: string;
  readonly model: ModelConfig;
  readonly layers: readonly ResolvedLayer[];
  /** Built-in blocks and tasks plus the config's plugins, as for training. */
  readonly container: Container;
  /** The config as weights-file metadata, so files written from this model describe it too. */
  readonly metadata: Record<string, string>;
}

/**
 * From a config file, as training reads it. `pluginAnchor` replaces the file that relative
 * plugin paths are resolved against: a run's saved `config.yaml` lives in its artifacts folder,
 * while its plugin paths are relative to the config the run was started from.
 */
export async function blueprintFromConfigFile(file: string, pluginAnchor?: string): Promise<ModelBlueprint> {
  const loaded = await loadConfig(file);
  const locate = (index: number): SourceLocation =>
    pluginAnchor === undefined ? loaded.locate(['plugins', index]) : { file: pluginAnchor };
  const container = await modelContainer(loaded.config.plugins, locate);
  return {
    source: file,
    model: loaded.config.model,
    layers: resolveLayers(loaded, container),
    container,
    metadata: {
      [METADATA_KEYS.model]: JSON.stringify(loaded.config.model),
      ...configMetadata({ file: pluginAnchor ?? file, resolved: loaded.resolved }),
    },
  };
}

/**
 * From a weights file's own metadata: the whole run config when it was recorded, else the
 * model section alone (built-in blocks only). Undefined when the file describes no model.
 */
export async function blueprintFromMetadata(
  metadata: Readonly<Record<string, string>>,
  weightsFile: string,
): Promise<ModelBlueprint | undefined> {
  const key = metadata[METADATA_KEYS.config] !== undefined ? METADATA_KEYS.config : METADATA_KEYS.model;
  const text = metadata[key];
  if (text === undefined) return undefined;
  const source = `${weightsFile} (metadata ${key})`;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new InterleaveError(`${source}: not valid JSON`);
  }
  const parsed = describedModelSchema.safeParse(key === METADATA_KEYS.config ? data : { model: data });
  if (!parsed.success) throw issueError(source, [], parsed.error.issues);
  const { model, plugins } = parsed.data;
  const anchor = metadata[METADATA_KEYS.configFile] ?? weightsFile;
  const container = await modelContainer(plugins, () => ({ file: anchor }));
  return {
    source,
    model,
    layers: resolveLayersOf(model, container, source),
    container,
    metadata: Object.fromEntries(
      Object.values(METADATA_KEYS).flatMap((name) => (metadata[name] === undefined ? [] : [[name, metadata[name]]])),
    ),
  };
}

/** The part of a run config that decides the model; the rest (task, train, ...) is ignored. */
const describedModelSchema = z.looseObject({
  model: modelSchema,
  plugins: z.array(z.string().min(1)).default([]),
});

async function modelContainer(
  plugins: readonly string[],
  locate: (index: number) => SourceLocation,
): Promise<Container> {
  const container = createContainer();
  await applyPlugin(container, registerBuiltinBlocks);
  await applyPlugin(container, registerBuiltinTasks);
  await loadPlugins(container, plugins, locate);
  return container;
}

/**
 * What core's `resolveLayers` does for a loaded config file, for config data that has no file
 * (and so no line numbers): the block of every layer found, its keys checked by its schema.
 */
function resolveLayersOf(model: ModelConfig, container: Container, source: string): ResolvedLayer[] {
  const registry = container.get<BlockRegistry>(TOKENS.BlockRegistry);
  return expandLayers(model.layers).map(({ entry, path }) => {
    const { block: name, mlp, ...keys } = entry;
    const block = registry.get(name);
    if (block === undefined) {
      throw new InterleaveError(
        `${source}: ${formatKeyPath([...path, 'block'])}: unknown block '${name}' (registered: ${registry.names().join(', ')}; the config's plugins could not be loaded or do not register it)`,
      );
    }
    const parsed = block.schema.safeParse(keys);
    if (!parsed.success) throw issueError(source, path, parsed.error.issues);
    return { block, config: parsed.data, mlp: mlp ?? null, path };
  });
}

function issueError(source: string, base: KeyPath, issues: readonly z.core.$ZodIssue[]): InterleaveError {
  const issue = issues[0];
  const path = [...base, ...((issue?.path ?? []) as (string | number)[])];
  return new InterleaveError(`${source}: ${formatKeyPath(path)}: ${issue?.message ?? 'invalid value'}`);
}
