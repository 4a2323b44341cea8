import { setTimeout as sleep } from 'node:timers/promises';
import { openStore } from '@interleave/core';
import { CHECKPOINT_FOLDER, TRAINER_FILE } from '../checkpoint/checkpoint.js';
import type { ProgressStream } from '../trainer/progress.js';
import { closeAbandonedRuns } from './abandoned-runs.js';
import { finishUnlessFinishedElsewhere } from './finish-gates.js';
import {
  describeOutcome,
  describePlan,
  finishSweep,
  reportCompletedSweep,
  type SweepReport,
  trialJob,
} from './finish-sweep.js';
import { openSweepParent } from './parent-run.js';
import type { SweepPlan, TrialSpec } from './plan.js';
import { SweepProgress } from './progress.js';
import { claimTrial } from './trial-claims.js';
import { TrialPool } from './trial-pool.js';
import type { TrialOutcome } from './trial-protocol.js';
import { findFinishedTrialRun, findTrialRuns, finishedRunOf, runsOfTrial } from './trial-runs.js';

export interface LocalSweepOptions {
  /** Trial processes run at once. */
  readonly workers: number;
  readonly out: ProgressStream;
  /** Aborting stops the running trials (they end KILLED with a checkpoint) and starts no more. */
  readonly signal?: AbortSignal;
}

/**
 * Runs the trials of `plan` that have no FINISHED run in MLflow yet, `workers` at a time in
 * trial processes on this machine, as child runs of the sweep's parent run; then writes the
 * results. Running it again after a crash or Ctrl-C runs only what is still missing.
 */
export async function runLocalSweep(plan: SweepPlan, options: LocalSweepOptions): Promise<SweepReport> {
  const { out, signal } = options;
  const runsByTrial = await findTrialRuns(plan.trials);
  const pending = plan.trials.filter((trial) => finishedRunOf(runsByTrial.get(trial.trialId)) === undefined);
  const finishedBefore = plan.trials.length - pending.length;
  for (const trial of pending) {
    await closeAbandonedRuns(trial.tracking, runsByTrial.get(trial.trialId) ?? [], {
      otherHosts: false,
      reason: 'abandoned: the process running it is gone',
    });
  }
  const workers = Math.max(1, Math.min(options.workers, pending.length));
  out.write(describePlan(plan, finishedBefore));
  if (pending.length === 0) {
    const report = await reportCompletedSweep(plan, out);
    if (report !== undefined) return report;
  }
  const { tracker: parent, resumed } = await openSweepParent(plan);
  out.write(
    `parent run: ${parent.runId}${resumed ? ' (continued)' : ''}; ${pending.length > 0 ? `${workers} worker process${workers === 1 ? '' : 'es'}` : 'nothing to run'}\n`,
  );

  // A string: the trial was finished by another sweep process on the same store meanwhile.
  const outcomes = new Map<string, TrialOutcome | string>();
  const progress = new SweepProgress(out, plan.trials.length, finishedBefore);
  const pool = new TrialPool(workers, finishUnlessFinishedElsewhere);
  const stop = () => pool.stopAll();
  signal?.addEventListener('abort', stop);
  const queue = [...pending];
  let running = 0;
  const counts = () => {
    const values = [...outcomes.values()];
    const finished = values.filter((outcome) => typeof outcome === 'string' || outcome.status === 'FINISHED').length;
    return { done: finishedBefore + finished, running, failed: values.length - finished, waiting: queue.length };
  };
  try {
    // One loop per worker: each takes the next trial when its last one ends.
    const loop = async () => {
      for (let trial = queue.shift(); trial !== undefined && !signal?.aborted; trial = queue.shift()) {
        const claim = await claimTrial(trial.tracking, trial.trialId);
        if (claim === undefined) {
          // Another sweep process on this store is running it: come back to it later.
          queue.push(trial);
          await sleep(CLAIM_RETRY_MS);
          continue;
        }
        try {
          const finishedElsewhere = await findFinishedTrialRun(trial.tracking, trial.trialId);
          if (finishedElsewhere !== undefined) {
            outcomes.set(trial.trialId, `finished by run ${finishedElsewhere.runId} of another sweep process`);
            progress.update(counts());
            continue;
          }
          const resumeRunId = await resumableRunOf(trial);
          running++;
          progress.update(counts());
          const outcome = await pool.run({ ...trialJob(trial, parent), ...(resumeRunId ? { resumeRunId } : {}) });
          running--;
          outcomes.set(trial.trialId, outcome);
          progress.update(counts());
          progress.event(describeOutcome(trial, outcome));
        } finally {
          await claim.release();
        }
      }
    };
    await Promise.all(Array.from({ length: pending.length > 0 ? workers : 0 }, loop));
  } finally {
    signal?.removeEventListener('abort', stop);
    progress.finish();
    await pool.close();
  }
  return finishSweep(plan, parent, outcomes, out, signal?.aborted ?? false);
}

/** How often a worker looks again at a trial another sweep process holds. */
const CLAIM_RETRY_MS = 500;

/**
 * The run to continue for `trial`: its newest KILLED run (stopped, or left behind by a killed
 * process) that wrote a checkpoint, so a killed trial resumes where it stopped instead of
 * training from scratch. The resume itself checks the checkpoint's config hash.
 */
async function resumableRunOf(trial: TrialSpec): Promise<string | undefined> {
  const runs = await runsOfTrial(trial.tracking, trial.trialId);
  const store = openStore(trial.tracking.uri);
  for (const run of [...runs].reverse()) {
    if (run.status !== 'KILLED') continue;
    // The checkpoint is looked up through the store, wherever it keeps artifacts.
    const files = await store.listArtifacts(run.runId, CHECKPOINT_FOLDER).catch(() => []);
    if (files.some((file) => file.path === `${CHECKPOINT_FOLDER}/${TRAINER_FILE}`)) return run.runId;
  }
  return undefined;
}
