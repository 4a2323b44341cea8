import type { Redis } from 'ioredis';
import type { FinishGate } from './trial-pool.js';
import { runsOfTrial } from './trial-runs.js';

/** How long a claim to finish a trial holds: marking a run FINISHED takes milliseconds. */
const CLAIM_MS = 60_000;

/**
 * Replaces a claim only while it still names the run we found holding it (ARGV[1]), so that two
 * workers taking over the same stale claim cannot both win.
 */
const REPLACE_CLAIM = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return false`;

/**
 * A run may finish unless another run of the same trial already has, or another worker closed
 * this one (it took the trial over, believing this run's worker dead). Enough for local sweeps,
 * which claim each trial in the store before running it (trial-claims.ts), so no two runs of a
 * trial are alive at once; this is the last check behind the claim.
 */
export const finishUnlessFinishedElsewhere: FinishGate = async (job, runId) => {
  const runs = await runsOfTrial(job.tracking, job.trialId);
  const other = runs.find((run) => run.status === 'FINISHED' && run.runId !== runId);
  if (other !== undefined) return `a duplicate: run ${other.runId} already finished trial ${job.trialId}`;
  const self = runs.find((run) => run.runId === runId);
  if (self !== undefined && self.status !== 'RUNNING')
    return `run ${runId} was closed ${self.status} by another worker, which took trial ${job.trialId} over`;
  return undefined;
};

/**
 * Across workers (a queue retries a trial whose worker seemed dead, but might only have been
 * slow): an exclusive Redis claim per trial decides which run may finish, then the MLflow check
 * above catches a run that finished before the claim expired. A run that loses ends KILLED.
 *
 * A claim can outlive its run: a worker killed between claiming and marking its run FINISHED
 * leaves it for CLAIM_MS, while the worker that took the trial over retrains it in less. Such a
 * claim is stale once its run is closed (the taker marks the abandoned run KILLED before it
 * starts), and is then replaced rather than obeyed.
 */
export function finishWithRedisClaim(redis: Redis, namespace: string): FinishGate {
  return async (job, runId) => {
    const key = `${namespace}:finish:${job.trialId}`;
    // A few rounds: the claim may expire, or be replaced by a third run, between our reads.
    for (let round = 0; round < 3; round++) {
      if ((await redis.set(key, runId, 'PX', CLAIM_MS, 'NX')) === 'OK')
        return finishUnlessFinishedElsewhere(job, runId);
      const holder = await redis.get(key);
      if (holder === runId) return finishUnlessFinishedElsewhere(job, runId);
      if (holder === null) continue;
      const holderRun = (await runsOfTrial(job.tracking, job.trialId)).find((run) => run.runId === holder);
      if (holderRun?.status !== 'KILLED' && holderRun?.status !== 'FAILED')
        return `a duplicate: run ${holder} of trial ${job.trialId} is being marked FINISHED by another worker`;
      const replaced = await redis.eval(REPLACE_CLAIM, 1, key, holder, runId, String(CLAIM_MS));
      if (replaced === 'OK') return finishUnlessFinishedElsewhere(job, runId);
    }
    return `a duplicate: another run of trial ${job.trialId} holds the claim to finish it`;
  };
}
