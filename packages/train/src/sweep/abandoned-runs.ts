import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { type RunRecord, resumeTracker } from '@interleave/core';
import type { TrackingTarget } from './plan.js';
import { SWEEP_TAGS } from './trial-runs.js';

/**
 * Marks KILLED the RUNNING runs that a killed process left behind, so MLflow does not show
 * them as live forever. A run is abandoned when the process named by its `interleave.worker`
 * tag is gone from this machine or, with `otherHosts` (a queue worker that now holds the
 * trial's lock, so whoever ran it before lost it), runs on another machine.
 */
export async function closeAbandonedRuns(
  tracking: TrackingTarget,
  runs: readonly RunRecord[],
  options: { otherHosts: boolean; reason: string },
): Promise<number> {
  let closed = 0;
  for (const run of runs) {
    if (run.status !== 'RUNNING' || !isAbandoned(run, options.otherHosts)) continue;
    try {
      const tracker = await resumeTracker({ uri: tracking.uri, runId: run.runId, afterStep: Number.MAX_SAFE_INTEGER });
      await tracker.setTags({
        [SWEEP_TAGS.killedReason]: `${options.reason} (was run by ${run.tags[SWEEP_TAGS.owner]})`,
      });
      await tracker.end('KILLED');
      closed++;
    } catch {
      // Housekeeping only: a run that cannot be reopened stays as it is.
    }
  }
  return closed;
}

function isAbandoned(run: RunRecord, otherHosts: boolean): boolean {
  const owner = run.tags[SWEEP_TAGS.owner];
  const match = owner === undefined ? null : /^(.*):(\d+)$/.exec(owner);
  if (match === null) return false;
  const [, host, pid] = match;
  if (host !== hostname()) return otherHosts;
  return !isAlive(Number(pid));
}

/** Whether the process an `interleave.worker` owner (`host:pid`) names is gone from this machine. */
export function ownerIsGone(owner: string): boolean {
  const match = /^(.*):(\d+)$/.exec(owner);
  return match !== null && match[1] === hostname() && !isAlive(Number(match[2]));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !isZombie(pid);
}

/**
 * A killed process stays in the process table until its new parent reaps it, which on a busy
 * machine (or under an init that is slow to reap) can outlast the check; it runs nothing.
 */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}
