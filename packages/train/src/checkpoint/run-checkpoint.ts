import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { InterleaveError, openStore } from '@interleave/core';
import { CHECKPOINT_FOLDER, MODEL_FILE } from './checkpoint.js';
import { downloadFolderFor, downloadRunArtifacts } from './run-artifacts.js';

const RUN_ID = /^[0-9a-f]{32}$/;
const CONFIG_ARTIFACT = 'config.yaml';

/** A model that a command was pointed at, as a local path, and the run it belongs to when known. */
export interface CheckpointTarget {
  /** A run folder, checkpoint folder or weights file on this machine. */
  readonly path: string;
  /** The run named by id, when the target was one. */
  readonly run?: { readonly uri: string; readonly runId: string };
  /** Removes what was downloaded for it. */
  dispose(): Promise<void>;
}

/**
 * Resolves what a person typed: an existing path stays as it is; a run id is looked up in the
 * tracking store at `uri` (a file store or a server) and its final weights and resolved config
 * are downloaded through the store into a temporary run-shaped folder.
 */
export async function resolveCheckpointTarget(target: string, uri: string): Promise<CheckpointTarget> {
  if (!RUN_ID.test(target) || existsSync(target)) return { path: target, dispose: async () => {} };
  const store = openStore(uri);
  const run = await store.getRun(target).catch(() => undefined);
  if (run === undefined) {
    throw new InterleaveError(`no MLflow run '${target}' in ${store.displayUri} (pass --uri, or the run's folder)`);
  }
  const folder = await downloadFolderFor(target);
  try {
    await downloadRunArtifacts(uri, target, [`${CHECKPOINT_FOLDER}/${MODEL_FILE}`], folder);
  } catch (error) {
    await rm(folder, { recursive: true, force: true });
    throw new InterleaveError(
      `run ${target} has no checkpoint to load (artifact ${CHECKPOINT_FOLDER}/${MODEL_FILE}): ${(error as Error).message}`,
    );
  }
  // Runs made before configs were logged have none; the weights' metadata then describes the model.
  await downloadRunArtifacts(uri, target, [CONFIG_ARTIFACT], folder).catch(() => undefined);
  // A language-model run keeps the tokenizer it learned from its corpus beside checkpoint/.
  await downloadRunArtifacts(uri, target, ['tokenizer.json'], folder).catch(() => undefined);
  return {
    path: folder,
    run: { uri, runId: target },
    dispose: () => rm(folder, { recursive: true, force: true }),
  };
}
