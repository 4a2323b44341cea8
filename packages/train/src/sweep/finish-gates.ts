import type { Redis } from 'ioredis';
import type { FinishGate } from './trial-pool.js';
import { findFinishedTrialRun } from './trial-runs.js';

/** How long a claim to finish a trial holds: marking a run FINISHED takes milliseconds. */
const CLAIM_MS = 60_000;

/**
 * A run may finish unless another run of the same trial already has: enough for local sweeps,
 * which claim each trial in the store before running it (trial-claims.ts), so no two runs of a
 * trial are alive at once; this is the last check behind the claim.
 */
export const finishUnlessFinishedElsewhere: FinishGate = async (job, runId) => {
  const other = await findFinishedTrialRun(job.tracking, job.trialId, runId);
  return other === undefined ? undefined : `a duplicate: run ${other.runId} already finished trial ${job.trialId}`;
};

/**
 * Across workers (a queue retries a trial whose worker seemed dead, but might only have been
 * slow): an exclusive Redis claim per trial decides which run may finish, then the MLflow check
 * above catches a run that finished before the claim expired. A run that loses ends KILLED.
 */
export function finishWithRedisClaim(redis: Redis, namespace: string): FinishGate {
  return async (job, runId) => {
    const key = `${namespace}:finish:${job.trialId}`;
    const claimed = await redis.set(key, runId, 'PX', CLAIM_MS, 'NX');
    if (claimed !== 'OK') {
      const holder = await redis.get(key);
      if (holder !== runId)
        return `a duplicate: run ${holder} of trial ${job.trialId} is being marked FINISHED by another worker`;
    }
    return finishUnlessFinishedElsewhere(job, runId);
  };
}
