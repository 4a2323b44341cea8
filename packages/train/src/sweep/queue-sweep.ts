import { setTimeout as sleep } from 'node:timers/promises';
import type { ProgressStream } from '../trainer/progress.js';
import {
  describeOutcome,
  describePlan,
  finishSweep,
  reportCompletedSweep,
  type SweepReport,
  trialJob,
} from './finish-sweep.js';
import { openSweepParent } from './parent-run.js';
import type { SweepPlan } from './plan.js';
import { SweepProgress } from './progress.js';
import {
  connectRedis,
  enqueueTrials,
  jobIdOf,
  jobStates,
  openQueue,
  type QueueSettings,
  type RetrySettings,
} from './queue.js';
import type { TrialOutcome } from './trial-protocol.js';
import { findTrialRuns, finishedRunOf } from './trial-runs.js';

export interface QueueSweepOptions {
  readonly queue: QueueSettings;
  readonly retries: RetrySettings;
  readonly out: ProgressStream;
  /** Enqueue and return at once, leaving the parent run open (a later run of the command follows it). */
  readonly detach?: boolean;
  /** Aborting stops following; the trials stay queued and the workers go on. */
  readonly signal?: AbortSignal;
  /** How often the queue is polled while following. */
  readonly pollMs?: number;
}

/**
 * Enqueues the trials of `plan` that have no FINISHED run for `interleave worker` processes to
 * take, then follows them until each has completed or run out of attempts, and writes the
 * results like a local sweep.
 */
export async function runQueuedSweep(plan: SweepPlan, options: QueueSweepOptions): Promise<SweepReport | undefined> {
  const { out, signal } = options;
  const runsByTrial = await findTrialRuns(plan.trials);
  const pending = plan.trials.filter((trial) => finishedRunOf(runsByTrial.get(trial.trialId)) === undefined);
  const finishedBefore = plan.trials.length - pending.length;
  out.write(describePlan(plan, finishedBefore));
  if (pending.length === 0) {
    const report = await reportCompletedSweep(plan, out);
    if (report !== undefined) return report;
  }
  const redis = await connectRedis(options.queue.url);
  const queue = openQueue(options.queue, redis);
  try {
    const { tracker: parent, resumed } = await openSweepParent(plan);
    const counts = await enqueueTrials(
      queue,
      pending.map((trial) => trialJob(trial, parent)),
      options.retries,
    );
    out.write(
      `parent run: ${parent.runId}${resumed ? ' (continued)' : ''}\n` +
        `queue '${options.queue.name}' at ${options.queue.url}: ${counts.added} trials added, ${counts.requeued} put back, ${counts.alreadyQueued} already queued\n`,
    );
    if (options.detach) {
      out.write(
        `detached: start workers with  interleave worker --queue ${options.queue.url}\n` +
          `follow with  interleave sweep ${plan.file} --queue ${options.queue.url} --status\n`,
      );
      return undefined;
    }
    if (pending.length > 0) out.write(`waiting for workers (interleave worker --queue ${options.queue.url})\n`);
    const outcomes = new Map<string, TrialOutcome | string>();
    const progress = new SweepProgress(out, plan.trials.length, finishedBefore);
    try {
      let open = [...pending];
      while (open.length > 0 && !signal?.aborted) {
        const states = await jobStates(queue, open);
        const events: string[] = [];
        for (const trial of open) {
          const state = states.get(trial.trialId);
          if (state === 'completed') {
            const outcome = (await queue.getJob(jobIdOf(trial)))?.returnvalue as TrialOutcome | undefined;
            outcomes.set(trial.trialId, outcome ?? 'the job completed without an outcome');
            events.push(outcome ? describeOutcome(trial, outcome) : `trial ${trial.index}/${trial.total} completed`);
          } else if (state === 'failed' || state === 'unknown') {
            const job = state === 'failed' ? await queue.getJob(jobIdOf(trial)) : undefined;
            const reason = job?.failedReason ?? 'the job is no longer in the queue';
            outcomes.set(trial.trialId, reason);
            events.push(
              `trial ${trial.index}/${trial.total} FAILED after ${job?.attemptsMade ?? 0} attempts: ${reason}`,
            );
          }
        }
        open = open.filter((trial) => !outcomes.has(trial.trialId));
        const running = open.filter((trial) => states.get(trial.trialId) === 'active').length;
        const finishedNow = [...outcomes.values()].filter((o) => typeof o !== 'string' && o.status === 'FINISHED');
        const done = finishedBefore + finishedNow.length;
        progress.update({ done, running, failed: outcomes.size - finishedNow.length, waiting: open.length - running });
        for (const event of events) progress.event(event);
        if (open.length > 0) await sleep(options.pollMs ?? 1000, undefined, { signal }).catch(() => undefined);
      }
    } finally {
      progress.finish();
    }
    if (signal?.aborted) {
      out.write(
        'stopped following; the trials stay queued for the workers. Run the same command again to follow them.\n',
      );
      return undefined;
    }
    return await finishSweep(plan, parent, outcomes, out, false);
  } finally {
    await queue.close();
    redis.disconnect();
  }
}
