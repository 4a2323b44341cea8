import {
  findRunsWithTag,
  flattenForParams,
  openTracker,
  type RunRecord,
  resumeTracker,
  type Tracker,
} from '@interleave/core';
import { stringify } from 'yaml';
import type { SweepPlan } from './plan.js';
import { mlflowSafeKey, SWEEP_TAGS } from './trial-runs.js';

/**
 * The sweep's own MLflow run, parent of every trial run. Running the same sweep again (after a
 * crash, a Ctrl-C, or to retry failed trials) continues its latest unfinished parent run, so a
 * sweep keeps one parent until it completes; a sweep that completed gets a new one.
 */
export async function openSweepParent(plan: SweepPlan): Promise<{ tracker: Tracker; resumed: boolean }> {
  const { uri, experiment } = plan.tracking;
  const latest = (await sweepParents(plan)).filter((run) => run.status !== 'FINISHED').at(-1);
  if (latest !== undefined) {
    // The parent logs no metrics, so there is no history to cut back.
    return {
      tracker: await resumeTracker({ uri, runId: latest.runId, afterStep: Number.MAX_SAFE_INTEGER }),
      resumed: true,
    };
  }
  const tracker = await openTracker({ uri, experiment, runName: `${plan.name}-sweep` });
  await tracker.setTags({
    [SWEEP_TAGS.sweepId]: plan.sweepId,
    [SWEEP_TAGS.role]: 'parent',
    'interleave.sweep_file': plan.file,
    'interleave.sweep_trials': String(plan.trials.length),
  });
  const params = Object.entries(flattenForParams({ sweep: plan.resolved.sweep }));
  await tracker.logParams({
    ...Object.fromEntries(params.map(([key, value]) => [mlflowSafeKey(key), value])),
    'sweep.size': plan.trials.length,
  });
  await tracker.logArtifact('sweep.yaml', stringify(plan.resolved));
  return { tracker, resumed: false };
}

/** The sweep's parent runs so far, oldest first. */
export async function sweepParents(plan: SweepPlan): Promise<RunRecord[]> {
  const runs = await findRunsWithTag(plan.tracking.uri, plan.tracking.experiment, SWEEP_TAGS.sweepId, plan.sweepId);
  return runs.filter((run) => run.tags[SWEEP_TAGS.role] === 'parent');
}
