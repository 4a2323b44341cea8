import {
  type ConfigFiles,
  configFromText,
  coreConfigSections,
  type LoadedConfig,
  loadConfig,
  resolveConfig,
} from '@interleave/core';
import { z } from 'zod';
import { sweepSchema } from '../sweep/sweep-schema.js';
import { trackingSchema, trainSchema } from './train-schema.js';

const { name, seed, backend, model, task, plugins, evals } = coreConfigSections;

/**
 * The experiment file (docs/design.md#config): core's sections and train's, in the
 * order a config is written (error messages list the allowed keys in this order).
 */
export const experimentSchema = z.strictObject({
  name,
  seed,
  backend,
  model,
  task,
  train: trainSchema,
  tracking: trackingSchema.default({ uri: './mlruns', experiment: 'Default' }),
  plugins,
  evals,
  /** `null` marks a config made from a sweep's trial: a plain training config again. */
  sweep: sweepSchema.nullable().optional(),
});
export type ExperimentConfig = z.infer<typeof experimentSchema>;

/** An experiment file, loaded and validated. */
export type LoadedExperiment = LoadedConfig<ExperimentConfig>;

/**
 * Loads an experiment file (`extends`, `--set` overrides) and validates all of it, core's
 * sections and train's, reporting the first problem with its file, key path and line:column.
 */
export function loadExperimentConfig(file: string, overrides: readonly string[] = []): Promise<LoadedExperiment> {
  return loadConfig(experimentSchema, file, overrides);
}

/** `loadExperimentConfig` on files already read (a sweep resolves one config per trial from them). */
export function resolveExperimentConfig(files: ConfigFiles, overrides: readonly string[] = []): LoadedExperiment {
  return resolveConfig(experimentSchema, files, overrides);
}

/** An experiment config given as YAML text (a sweep trial's), errors located at `label:line:col`. */
export function experimentConfigFromText(text: string, label: string): LoadedExperiment {
  return configFromText(experimentSchema, text, label);
}
