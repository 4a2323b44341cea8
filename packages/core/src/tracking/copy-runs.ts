import type { MetricRecord, RunRecord, TrackingStore } from './store.js';
import { listArtifactFiles, searchAllRuns } from './store.js';

/** Tags a copied run carries: where it came from, and whether the copy completed. */
export const ORIGIN_TAGS = {
  runId: 'interleave.origin.run_id',
  store: 'interleave.origin.store',
  complete: 'interleave.origin.complete',
} as const;

export interface CopiedRun {
  sourceRunId: string;
  targetRunId: string;
  experiment: string;
  /** `copied`, `completed` (a copy that an earlier attempt left unfinished), or `already there`. */
  outcome: 'copied' | 'completed' | 'already there';
  metricPoints: number;
  artifacts: number;
}

/**
 * Copies every run of `source` (all experiments, or only `experiments`) into `target`
 * (`interleave mlflow push`): same experiment names, run names, start and end times, status,
 * params, tags, full metric histories and artifacts, each copy tagged with its origin. It is
 * idempotent: a run copied before is found by its origin tags and only what it lacks is sent
 * (metric points are compared with the target's histories), so running it again, or after an
 * interruption, sends nothing twice.
 */
export async function copyRuns(
  source: TrackingStore,
  target: TrackingStore,
  options: { originName: string; experiments?: readonly string[]; onRun?: (copied: CopiedRun) => void },
): Promise<CopiedRun[]> {
  const copied: CopiedRun[] = [];
  for (const experiment of await source.listExperiments()) {
    if (options.experiments && !options.experiments.includes(experiment.name)) continue;
    const runs = await searchAllRuns(source, [experiment.experimentId]);
    if (runs.length === 0) continue;
    const destination = await target.getOrCreateExperiment(experiment.name);
    for (const run of runs) {
      const result = await copyRun(source, target, run, destination.experimentId, options.originName);
      const entry = { ...result, experiment: experiment.name };
      copied.push(entry);
      options.onRun?.(entry);
    }
  }
  return copied;
}

async function copyRun(
  source: TrackingStore,
  target: TrackingStore,
  run: RunRecord,
  experimentId: string,
  originName: string,
): Promise<Omit<CopiedRun, 'experiment'>> {
  const earlier = (
    await searchAllRuns(target, [experimentId], { tag: { key: ORIGIN_TAGS.runId, value: run.runId } })
  ).find((candidate) => candidate.tags[ORIGIN_TAGS.store] === originName);
  if (earlier?.tags[ORIGIN_TAGS.complete] === 'true') {
    return {
      sourceRunId: run.runId,
      targetRunId: earlier.runId,
      outcome: 'already there',
      metricPoints: 0,
      artifacts: 0,
    };
  }
  const copy =
    earlier ??
    (await target.createRun(experimentId, {
      runName: run.runName,
      startTime: run.startTime,
      userId: run.userId,
      tags: { [ORIGIN_TAGS.runId]: run.runId, [ORIGIN_TAGS.store]: originName },
    }));
  const tags = Object.entries(run.tags)
    .filter(([key]) => key !== 'mlflow.parentRunId')
    .map(([key, value]) => ({ key, value }));
  // A parent run id names a run of the source store; the copy names the parent's copy when known.
  const parent = run.tags['mlflow.parentRunId'];
  if (parent !== undefined) tags.push({ key: 'interleave.origin.parent_run_id', value: parent });
  await target.logBatch(copy.runId, {
    params: Object.entries(run.params).map(([key, value]) => ({ key, value })),
    tags,
  });
  let metricPoints = 0;
  for (const key of run.metricKeys) {
    const missing = await missingPoints(source, target, run.runId, copy.runId, key);
    await target.logBatch(copy.runId, { metrics: missing });
    metricPoints += missing.length;
  }
  let artifacts = 0;
  const present = new Map((await listArtifactFiles(target, copy.runId)).map((entry) => [entry.path, entry.size]));
  for (const file of await listArtifactFiles(source, run.runId)) {
    if (present.has(file.path) && present.get(file.path) === file.size) continue;
    await target.logArtifact(copy.runId, file.path, await source.downloadArtifact(run.runId, file.path));
    artifacts++;
  }
  await target.updateRun(copy.runId, { status: run.status, endTime: run.endTime ?? undefined });
  await target.setTag(copy.runId, ORIGIN_TAGS.complete, 'true');
  return {
    sourceRunId: run.runId,
    targetRunId: copy.runId,
    outcome: earlier ? 'completed' : 'copied',
    metricPoints,
    artifacts,
  };
}

/** The points of `key` in the source run that the target run lacks (as many copies as are missing). */
async function missingPoints(
  source: TrackingStore,
  target: TrackingStore,
  sourceRunId: string,
  targetRunId: string,
  key: string,
): Promise<MetricRecord[]> {
  const onTarget = new Map<string, number>();
  for (const point of await target.getMetricHistory(targetRunId, key)) {
    const id = pointId(point.step, point.timestamp, point.value);
    onTarget.set(id, (onTarget.get(id) ?? 0) + 1);
  }
  const missing: MetricRecord[] = [];
  for (const point of await source.getMetricHistory(sourceRunId, key)) {
    const id = pointId(point.step, point.timestamp, point.value);
    const left = onTarget.get(id) ?? 0;
    if (left > 0) onTarget.set(id, left - 1);
    else missing.push({ key, ...point });
  }
  return missing;
}

function pointId(step: number, timestamp: number, value: number): string {
  return `${step}\n${timestamp}\n${Number.isNaN(value) ? 'nan' : value}`;
}
