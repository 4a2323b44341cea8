import { InterleaveError } from '@interleave/core';
import { type JobsOptions, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { TrialSpec } from './plan.js';
import type { TrialJob } from './trial-protocol.js';

/** The BullMQ queue sweeps and workers meet on unless told otherwise. */
export const DEFAULT_QUEUE_NAME = 'interleave-trials';

export interface QueueSettings {
  /** `redis://host:port` (or `rediss://…`, with user and password if needed). */
  readonly url: string;
  readonly name: string;
}

export interface RetrySettings {
  /** Attempts per trial, the first included. */
  readonly attempts: number;
  /** The first retry waits this long; each next one twice as long. */
  readonly backoffMs: number;
}

export const DEFAULT_RETRIES: RetrySettings = { attempts: 3, backoffMs: 10_000 };

/** A BullMQ custom job id must not look like a number: the trial id is prefixed. */
export function jobIdOf(trial: Pick<TrialSpec, 'trialId'>): string {
  return `trial-${trial.trialId}`;
}

/**
 * A Redis connection for BullMQ, checked first so that a wrong address is one clear error
 * rather than a client retrying forever.
 */
export async function connectRedis(url: string): Promise<Redis> {
  if (!/^rediss?:\/\//.test(url)) {
    throw new InterleaveError(`--queue needs a Redis URL such as redis://127.0.0.1:6379, not '${url}'`);
  }
  const probe = new Redis(url, {
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    connectTimeout: 5000,
  });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    await probe.ping();
  } catch (error) {
    throw new InterleaveError(
      `cannot reach Redis at ${url}: ${error instanceof Error ? error.message : String(error)}`,
    );
  } finally {
    probe.disconnect();
  }
  // BullMQ's blocking commands need a client that retries a request for as long as it takes.
  const redis = new Redis(url, { maxRetriesPerRequest: null });
  redis.on('error', () => undefined);
  return redis;
}

export function openQueue(settings: QueueSettings, redis: Redis): Queue<TrialJob> {
  return new Queue<TrialJob>(settings.name, { connection: redis });
}

export interface EnqueueCounts {
  readonly added: number;
  /** Failed or completed jobs of trials still unfinished in MLflow, put back in the queue. */
  readonly requeued: number;
  /** Jobs already waiting, delayed or running: left as they are. */
  readonly alreadyQueued: number;
}

/**
 * Puts each job in the queue under its trial's id, so enqueuing a sweep twice adds nothing
 * twice. Call it with the trials that have no FINISHED run: a job that already failed (out of
 * attempts) or completed without a FINISHED run surviving in MLflow is retried afresh.
 */
export async function enqueueTrials(
  queue: Queue<TrialJob>,
  jobs: readonly TrialJob[],
  retries: RetrySettings,
): Promise<EnqueueCounts> {
  const options: JobsOptions = {
    attempts: retries.attempts,
    backoff: { type: 'exponential', delay: retries.backoffMs },
    // Finished jobs stay, as the record --status and later enqueues read.
    removeOnComplete: false,
    removeOnFail: false,
  };
  let added = 0;
  let requeued = 0;
  let alreadyQueued = 0;
  for (const job of jobs) {
    const jobId = jobIdOf(job);
    const existing = await queue.getJob(jobId);
    if (existing === undefined) {
      await queue.add(`trial-${job.index}`, job, { ...options, jobId });
      added++;
      continue;
    }
    const state = await existing.getState();
    if (state === 'failed' || state === 'completed') {
      await existing.updateData(job);
      await existing.retry(state, { resetAttemptsMade: true, resetAttemptsStarted: true });
      requeued++;
    } else {
      alreadyQueued++;
    }
  }
  return { added, requeued, alreadyQueued };
}

/** Each trial's job state: waiting, delayed, active, completed, failed, … or 'unknown' (not in the queue). */
export async function jobStates(queue: Queue<TrialJob>, trials: readonly TrialSpec[]): Promise<Map<string, string>> {
  const states = await Promise.all(trials.map((trial) => queue.getJobState(jobIdOf(trial))));
  return new Map(trials.map((trial, index) => [trial.trialId, states[index] as string]));
}
