import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { InterleaveError } from '@interleave/core';
import { MODEL_FILE } from './checkpoint.js';

/** Where a checkpoint's weights are, and the run around them when there is one. */
export interface CheckpointLocation {
  readonly weightsFile: string;
  /** The run's resolved config (`artifacts/config.yaml`), when the weights sit in an MLflow run. */
  readonly runConfigFile?: string;
  /** The config file the run was started from (the run's `interleave.config_file` tag), when recorded. */
  readonly originalConfigFile?: string;
}

const CONFIG_ARTIFACT = 'config.yaml';
const CONFIG_FILE_TAG = 'interleave.config_file';

/**
 * Accepts what a person would point at: an MLflow run folder (`mlruns/<exp>/<run>`), its
 * `artifacts` or `artifacts/checkpoint` folder, or a `.safetensors` file.
 */
export async function locateCheckpoint(path: string): Promise<CheckpointLocation> {
  const info = await stat(path).catch(() => undefined);
  if (info === undefined) throw new InterleaveError(`no checkpoint at ${path}: no such file or folder`);
  if (info.isFile()) return withRun(path);
  const candidates = [
    join(path, MODEL_FILE),
    join(path, 'checkpoint', MODEL_FILE),
    join(path, 'artifacts', 'checkpoint', MODEL_FILE),
  ];
  const found = candidates.find((candidate) => existsSync(candidate));
  if (found === undefined) {
    throw new InterleaveError(
      `${path} holds no checkpoint: expected a run folder (with artifacts/checkpoint/${MODEL_FILE}), a checkpoint folder (with ${MODEL_FILE}) or a .safetensors file`,
    );
  }
  return withRun(found);
}

/** Adds the run's config when the weights file is `<run>/artifacts/checkpoint/<file>`. */
async function withRun(weightsFile: string): Promise<CheckpointLocation> {
  const checkpointDirectory = dirname(resolve(weightsFile));
  const artifacts = dirname(checkpointDirectory);
  const runConfig = join(artifacts, CONFIG_ARTIFACT);
  if (basename(checkpointDirectory) !== 'checkpoint' || !existsSync(runConfig)) return { weightsFile };
  const tag = await readFile(join(dirname(artifacts), 'tags', CONFIG_FILE_TAG), 'utf8').catch(() => undefined);
  const original = tag?.trim();
  return {
    weightsFile,
    runConfigFile: runConfig,
    ...(original && existsSync(original) ? { originalConfigFile: resolve(original) } : {}),
  };
}
