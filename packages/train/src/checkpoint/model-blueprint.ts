import {
  type Container,
  configDataSource,
  InterleaveError,
  type ModelConfig,
  modelSchema,
  type ResolvedLayer,
  resolveLayers,
  type SourceLocation,
} from '@interleave/core';
import { z } from 'zod';
import { loadExperimentConfig } from '../config/experiment-config.js';
import { createRunContainer } from '../run/prepare-run.js';
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
  const loaded = await loadExperimentConfig(file);
  const locate = (index: number): SourceLocation =>
    pluginAnchor === undefined ? loaded.locate(['plugins', index]) : { file: pluginAnchor };
  const container = await createRunContainer(loaded.config.plugins, locate);
  return {
    source: file,
    model: loaded.config.model,
    layers: resolveLayers(loaded.config.model.layers, container, loaded),
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
  const described = configDataSource(source);
  const { model, plugins } = described.validate(
    describedModelSchema,
    key === METADATA_KEYS.config ? data : { model: data },
    [],
  );
  const anchor = metadata[METADATA_KEYS.configFile] ?? weightsFile;
  const container = await createRunContainer(plugins, () => ({ file: anchor }));
  return {
    source,
    model,
    layers: resolveLayers(model.layers, container, described),
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
