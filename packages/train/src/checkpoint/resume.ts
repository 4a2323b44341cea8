import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { findExperiment, InterleaveError, openStore } from '@interleave/core';
import type { Trainer } from '../trainer/trainer.js';
import {
  CHECKPOINT_FOLDER,
  loadTensorsInto,
  MODEL_FILE,
  OPTIMIZER_FILE,
  TRAINER_FILE,
  type TrainerState,
} from './checkpoint.js';
import { downloadFolderFor, downloadRunArtifacts } from './run-artifacts.js';

export interface ResumableRun {
  /** A local copy of the run's checkpoint, downloaded through the tracking store. */
  readonly checkpointDirectory: string;
  /** Removes the local copy once it has been restored. */
  dispose(): Promise<void>;
  readonly state: TrainerState;
}

/**
 * Finds run `runId` of the experiment and its last checkpoint, and checks that the config
 * being resumed is the one the run was started with (same hash), so a resumed run is the run
 * that was interrupted, not a different one in its place.
 */
export async function findResumableRun(
  uri: string,
  experiment: string,
  runId: string,
  configHash: string,
): Promise<ResumableRun> {
  const store = openStore(uri);
  const expected = await findExperiment(uri, experiment);
  const run = expected === undefined ? undefined : await store.getRun(runId).catch(() => undefined);
  if (run === undefined || run.experimentId !== expected?.experimentId) {
    throw new InterleaveError(`no run '${runId}' in experiment '${experiment}' at ${store.displayUri}`);
  }
  const stateArtifact = `${CHECKPOINT_FOLDER}/${TRAINER_FILE}`;
  let state: TrainerState;
  try {
    state = JSON.parse(new TextDecoder().decode(await store.downloadArtifact(runId, stateArtifact))) as TrainerState;
  } catch {
    throw new InterleaveError(`run ${runId} has no checkpoint to resume from (artifact ${stateArtifact} is missing)`);
  }
  if (state.config_hash !== configHash) {
    throw new InterleaveError(
      `run ${runId} was trained with another config (hash ${state.config_hash}, this one is ${configHash}); resume it with the same config and --set overrides`,
    );
  }
  // The checkpoint comes through the store, wherever it keeps artifacts (a folder, a server).
  const folder = await downloadRunArtifacts(uri, runId, [CHECKPOINT_FOLDER], await downloadFolderFor(runId));
  return {
    checkpointDirectory: join(folder, 'artifacts', CHECKPOINT_FOLDER),
    state,
    dispose: () => rm(folder, { recursive: true, force: true }),
  };
}

/** Loads weights, optimizer moments and progress, so training continues exactly where it stopped. */
export async function restoreCheckpoint(directory: string, trainer: Trainer): Promise<void> {
  const state = JSON.parse(await readFile(join(directory, TRAINER_FILE), 'utf8')) as TrainerState;
  const weights = Object.fromEntries(trainer.model.parameters.list().map((p) => [p.name, p.variable]));
  await loadTensorsInto(join(directory, MODEL_FILE), weights);
  await loadTensorsInto(join(directory, OPTIMIZER_FILE), trainer.optimizer.stateTensors());
  trainer.restoreProgress(state.data_position);
}
