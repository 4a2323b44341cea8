import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Job, type Queue, UnrecoverableError, Worker } from 'bullmq';
import type { ProgressStream } from '../trainer/progress.js';
import { closeAbandonedRuns } from './abandoned-runs.js';
import { finishWithRedisClaim } from './finish-gates.js';
import { describeOutcome } from './finish-sweep.js';
import { connectRedis, openQueue, type QueueSettings } from './queue.js';
import { TrialPool } from './trial-pool.js';
import type { TrialJob, TrialOutcome } from './trial-protocol.js';
import { findFinishedTrialRun, finishedRunOf, runsOfTrial } from './trial-runs.js';

export interface WorkerOptions {
  readonly queue: QueueSettings;
  /** Trials this worker trains at once, each in its own process. */
  readonly concurrency: number;
  /**
   * How long a job's lock lasts without renewal (renewed every half of it). A worker that dies
   * mid-trial has its trial handed to another worker about this long (up to twice) later.
   */
  readonly lockMs: number;
  /** Exit once the queue has nothing waiting, delayed or running. */
  readonly exitWhenIdle?: boolean;
  readonly out: ProgressStream;
  /** First abort: take no new trials, let the running ones finish. Stopping them is `stopNow`. */
  readonly signal?: AbortSignal;
  readonly stopNow?: AbortSignal;
}

export const DEFAULT_LOCK_MS = 30_000;
/** Times a trial may lose its worker before the queue gives up on it. */
const MAX_STALLS = 5;

/**
 * `interleave worker`: takes trials from the BullMQ queue and trains them in trial processes,
 * logging each to the tracking URI its config names. Delivery is at least once (a trial whose
 * worker died is handed out again), and a trial never gets two FINISHED runs: the worker skips
 * a trial MLflow already has FINISHED, and a Redis claim decides between two runs that
 * complete at the same time (the loser ends KILLED, tagged with why).
 */
export async function runWorker(options: WorkerOptions): Promise<void> {
  const { out } = options;
  const connection = await connectRedis(options.queue.url);
  const claims = await connectRedis(options.queue.url);
  const pool = new TrialPool(options.concurrency, finishWithRedisClaim(claims, `interleave:${options.queue.name}`));
  options.stopNow?.addEventListener('abort', () => pool.stopAll());

  const worker = new Worker<TrialJob, TrialOutcome>(options.queue.name, (job) => processTrial(job, pool, out), {
    connection,
    concurrency: options.concurrency,
    lockDuration: options.lockMs,
    stalledInterval: options.lockMs,
    maxStalledCount: MAX_STALLS,
    autorun: false,
  });
  worker.on('error', (error) => out.write(`worker: ${error.message}\n`));
  out.write(
    `worker ${process.pid}: queue '${options.queue.name}' at ${options.queue.url}, ${options.concurrency} trial${options.concurrency === 1 ? '' : 's'} at a time\n`,
  );
  const queue = openQueue(options.queue, claims);
  const running = worker.run();
  const stopped = new Promise<void>((resolve) => {
    if (options.signal?.aborted) resolve();
    options.signal?.addEventListener('abort', () => resolve());
  });
  await Promise.race([running, stopped, ...(options.exitWhenIdle ? [untilIdle(queue, pool, options.signal)] : [])]);
  // Waits for the running trials to end; their jobs complete or go back for a retry.
  await worker.close();
  await running.catch(() => undefined);
  await pool.close();
  await queue.close();
  connection.disconnect();
  claims.disconnect();
  out.write(`worker ${process.pid}: stopped\n`);
}

async function processTrial(
  job: Job<TrialJob, TrialOutcome>,
  pool: TrialPool,
  out: ProgressStream,
): Promise<TrialOutcome> {
  const trial = job.data;
  const label = `trial ${trial.index}/${trial.total} of sweep '${trial.sweepName}' (${trial.trialId})`;
  const runs = await runsOfTrial(trial.tracking, trial.trialId);
  const done = finishedRunOf(runs);
  if (done !== undefined) {
    out.write(`${label}: already finished in run ${done.runId}\n`);
    return { trialId: trial.trialId, status: 'FINISHED', runId: done.runId, seconds: 0 };
  }
  // This worker holds the trial's lock now: a RUNNING run elsewhere is an attempt that lost it.
  await closeAbandonedRuns(trial.tracking, runs, {
    otherHosts: true,
    reason: 'abandoned: its worker stopped renewing the trial lock and the queue handed the trial to another worker',
  });
  out.write(`${label}: started (attempt ${job.attemptsMade + 1})\n`);
  // The log goes beside the parent run only where this machine sees the same tracking store.
  const logFile =
    trial.logFile !== undefined && existsSync(dirname(dirname(trial.logFile))) ? trial.logFile : undefined;
  const outcome = await pool.run({ ...trial, ...(logFile === undefined ? {} : { logFile }) });
  out.write(`${describeOutcome(trial, outcome)}\n`);
  if (outcome.status === 'FINISHED') return outcome;
  if (outcome.status === 'KILLED') {
    // Lost the race to finish: the trial is done if the winner's run is FINISHED by now.
    const winner = await findFinishedTrialRun(trial.tracking, trial.trialId);
    if (winner !== undefined) return { trialId: trial.trialId, status: 'FINISHED', runId: winner.runId, seconds: 0 };
  }
  const reason = outcome.error ?? `the run ended ${outcome.status}`;
  throw outcome.deterministic ? new UnrecoverableError(reason) : new Error(reason);
}

/** Resolves once the queue has had nothing to do for two polls in a row (and none of it is ours). */
async function untilIdle(queue: Queue<TrialJob>, pool: TrialPool, signal?: AbortSignal): Promise<void> {
  let quiet = 0;
  while (quiet < 2 && !signal?.aborted) {
    await sleep(1000);
    const counts = await queue.getJobCounts('waiting', 'delayed', 'active', 'prioritized');
    const busy = Object.values(counts).some((count) => count > 0) || pool.running > 0;
    quiet = busy ? 0 : quiet + 1;
  }
}
