import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findRuns, InterleaveError } from '@interleave/core';
import type { Trainer } from '../trainer/trainer.js';
import { loadTensorsInto, MODEL_FILE, OPTIMIZER_FILE, TRAINER_FILE, type TrainerState } from './checkpoint.js';

export interface ResumableRun {
  readonly checkpointDirectory: string;
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
  const run = (await findRuns(uri, experiment)).find((candidate) => candidate.runId === runId);
  if (run === undefined) throw new InterleaveError(`no run '${runId}' in experiment '${experiment}' at ${uri}`);
  const checkpointDirectory = join(fileURLToPath(run.artifactUri), 'checkpoint');
  const stateFile = join(checkpointDirectory, TRAINER_FILE);
  let state: TrainerState;
  try {
    state = JSON.parse(await readFile(stateFile, 'utf8')) as TrainerState;
  } catch {
    throw new InterleaveError(`run ${runId} has no checkpoint to resume from (${stateFile} is missing)`);
  }
  if (state.config_hash !== configHash) {
    throw new InterleaveError(
      `run ${runId} was trained with another config (hash ${state.config_hash}, this one is ${configHash}); resume it with the same config and --set overrides`,
    );
  }
  return { checkpointDirectory, state };
}

/** Loads weights, optimizer moments and progress, so training continues exactly where it stopped. */
export async function restoreCheckpoint(directory: string, trainer: Trainer): Promise<void> {
  const state = JSON.parse(await readFile(join(directory, TRAINER_FILE), 'utf8')) as TrainerState;
  const weights = Object.fromEntries(trainer.model.parameters.list().map((p) => [p.name, p.variable]));
  await loadTensorsInto(join(directory, MODEL_FILE), weights);
  await loadTensorsInto(join(directory, OPTIMIZER_FILE), trainer.optimizer.stateTensors());
  trainer.restoreProgress(state.data_position);
}
