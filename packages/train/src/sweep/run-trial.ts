import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { configHash, InterleaveError } from '@interleave/core';
import { experimentConfigFromText, type LoadedExperiment } from '../config/experiment-config.js';
import { trainFromConfig } from '../run/train-run.js';
import type { ProgressStream } from '../trainer/progress.js';
import type { TrialJob, TrialOutcome } from './trial-protocol.js';
import { paramTagKey, runOwner, SWEEP_TAGS } from './trial-runs.js';

export interface RunTrialOptions {
  readonly stopSignal: { stopped: boolean };
  /** Asked before the complete run is marked FINISHED; a reason keeps it from finishing (see TrainRunOptions). */
  readonly beforeFinish: (runId: string) => Promise<string | undefined>;
}

/**
 * Trains one trial from the config data it carries (a worker on another machine may not have
 * the sweep file) and logs it as a child run of the sweep. Never throws: a failure is an
 * outcome, with the reason.
 */
export async function runTrial(job: TrialJob, options: RunTrialOptions): Promise<TrialOutcome> {
  const started = performance.now();
  const seconds = () => (performance.now() - started) / 1000;
  const log = openLog(job.logFile);
  let runId: string | undefined;
  try {
    const result = await trainFromConfig({
      config: trialConfig(job),
      output: log,
      stopSignal: options.stopSignal,
      runName: job.runName,
      tags: trialTags(job),
      ...(job.resumeRunId === undefined ? {} : { resumeRunId: job.resumeRunId }),
      beforeFinish: async (id) => {
        runId = id;
        return options.beforeFinish(id);
      },
    });
    return {
      trialId: job.trialId,
      status: result.status,
      runId: result.runId,
      seconds: seconds(),
      accuracy: result.finalEval.accuracy,
      loss: result.finalEval.loss,
      ...(result.status === 'KILLED' ? { error: result.killedReason ?? 'stopped before the last step' } : {}),
    };
  } catch (error) {
    const message = error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error);
    log.write(`trial failed: ${message}\n`);
    return {
      trialId: job.trialId,
      status: 'FAILED',
      ...(runId === undefined ? {} : { runId }),
      seconds: seconds(),
      error: message,
      deterministic: error instanceof InterleaveError,
    };
  } finally {
    log.close();
  }
}

/**
 * The trial's config, read from the text it carries and checked against its id (the hash the
 * planner computed), so the worker trains exactly the trial that was planned.
 */
export function trialConfig(job: TrialJob): LoadedExperiment {
  const loaded = experimentConfigFromText(
    job.config,
    `sweep '${job.sweepName}' trial ${job.index} of ${job.total} (its config)`,
  );
  const hash = configHash(loaded.resolved);
  if (hash !== job.trialId) {
    throw new InterleaveError(
      `trial ${job.index}'s config hashes to ${hash}, not to its id ${job.trialId}: is this worker running another version of interleave than the one that planned the sweep?`,
    );
  }
  return loaded;
}

/** The tags that make a training run a trial of its sweep (SWEEP_TAGS). */
export function trialTags(job: TrialJob): Record<string, string> {
  const tags: Record<string, string> = {
    ...job.sourceTags,
    [SWEEP_TAGS.parentRunId]: job.parentRunId,
    [SWEEP_TAGS.sweepId]: job.sweepId,
    [SWEEP_TAGS.role]: 'trial',
    [SWEEP_TAGS.trialId]: job.trialId,
    [SWEEP_TAGS.trialIndex]: String(job.index),
    [SWEEP_TAGS.trialParams]: JSON.stringify(job.params).slice(0, 8000),
    [SWEEP_TAGS.owner]: runOwner(),
  };
  for (const [key, value] of Object.entries(job.params)) {
    tags[paramTagKey(key)] = (typeof value === 'string' ? value : JSON.stringify(value)).slice(0, 8000);
  }
  return tags;
}

/** The training log: appended synchronously, so nothing is lost if the process is killed. */
function openLog(file: string | undefined): ProgressStream & { close(): void } {
  if (file === undefined) return { write: () => undefined, close: () => undefined };
  mkdirSync(dirname(file), { recursive: true });
  const descriptor = openSync(file, 'a');
  return {
    write: (text: string) => writeSync(descriptor, text),
    close: () => closeSync(descriptor),
  };
}
