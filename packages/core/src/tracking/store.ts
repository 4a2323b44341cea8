import type { MetricPoint } from './file-store-format.js';
import type { RunStatus } from './tracker.js';

export type { MetricPoint } from './file-store-format.js';

/**
 * One MLflow tracking backend: the file store (a path) or a tracking server (REST), chosen by
 * the URI in `openStore` (docs/design.md#mlflow-tracking-stores). Every writer and reader of
 * runs goes through this, so nothing outside an implementation knows how runs are stored.
 */
export interface TrackingStore {
  /** The URI as given, with any credentials removed: safe to print. */
  readonly displayUri: string;
  listExperiments(): Promise<ExperimentSummary[]>;
  /** The active experiment called `name`, or undefined. */
  getExperimentByName(name: string): Promise<ExperimentSummary | undefined>;
  /** The active experiment called `name`, created when missing (safe when processes race). */
  getOrCreateExperiment(name: string): Promise<ExperimentSummary>;
  createRun(experimentId: string, options: CreateRunOptions): Promise<RunRecord>;
  /** The run with its params, tags and latest metric values; a missing run is an InterleaveError. */
  getRun(runId: string): Promise<RunRecord>;
  updateRun(runId: string, update: RunUpdate): Promise<void>;
  /** One page of runs of `experimentIds`, oldest first; pass `nextPageToken` back for the next. */
  searchRuns(experimentIds: readonly string[], query?: RunQuery): Promise<RunPage>;
  /** Params are write-once (the same value again is accepted); tags may be rewritten. */
  logBatch(runId: string, batch: LogBatch): Promise<void>;
  setTag(runId: string, key: string, value: string): Promise<void>;
  /** Every point of metric `key`, in logging order; empty if it was never logged. */
  getMetricHistory(runId: string, key: string): Promise<MetricPoint[]>;
  /** Writes one artifact at `relativePath` (under the run's artifact root) atomically. */
  logArtifact(runId: string, relativePath: string, data: Uint8Array | string): Promise<void>;
  /** Direct children of `relativePath` ('' for the root); empty when there is nothing there. */
  listArtifacts(runId: string, relativePath?: string): Promise<ArtifactEntry[]>;
  /** The bytes of one artifact file; a missing one is an InterleaveError. */
  downloadArtifact(runId: string, relativePath: string): Promise<Uint8Array>;
  /**
   * Drops metric points logged after `step` (what a crashed attempt logged past its last
   * checkpoint). Only a store that can rewrite history does this; the REST API cannot delete
   * points, so there the resumed run skips the steps it already holds instead.
   */
  truncateMetricsAfter?(runId: string, step: number): Promise<void>;
  /** Releases connections; the store is not used afterwards. */
  close?(): Promise<void>;
}

export interface ExperimentSummary {
  experimentId: string;
  name: string;
  artifactLocation: string;
  lifecycleStage: string;
}

export interface CreateRunOptions {
  runName: string;
  startTime?: number;
  tags?: Record<string, string>;
  userId?: string;
}

export interface RunUpdate {
  status?: RunStatus;
  endTime?: number | null;
  runName?: string;
}

export interface RunQuery {
  /** Only runs that carry tag `key` (with exactly `value`, when given). */
  tag?: { key: string; value?: string };
  maxResults?: number;
  pageToken?: string;
}

export interface RunPage {
  runs: RunRecord[];
  nextPageToken?: string;
}

/** A run as a store holds it, with its params and tags; metric histories are read on demand. */
export interface RunRecord {
  runId: string;
  runName: string;
  experimentId: string;
  status: RunStatus;
  startTime: number;
  endTime: number | null;
  userId: string;
  lifecycleStage: string;
  artifactUri: string;
  params: Record<string, string>;
  tags: Record<string, string>;
  metricKeys: string[];
}

export interface MetricRecord {
  key: string;
  value: number;
  timestamp: number;
  step: number;
}

export interface LogBatch {
  metrics?: MetricRecord[];
  params?: { key: string; value: string }[];
  tags?: { key: string; value: string }[];
}

export interface ArtifactEntry {
  /** Relative to the run's artifact root, `/`-separated. */
  path: string;
  isDir: boolean;
  size?: number;
}

/** Every run of `experimentIds` matching `query`, across pages, oldest first. */
export async function searchAllRuns(
  store: TrackingStore,
  experimentIds: readonly string[],
  query: Omit<RunQuery, 'pageToken'> = {},
): Promise<RunRecord[]> {
  const runs: RunRecord[] = [];
  let pageToken: string | undefined;
  do {
    const page = await store.searchRuns(experimentIds, { ...query, pageToken });
    runs.push(...page.runs);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return runs.sort((a, b) => a.startTime - b.startTime || a.runId.localeCompare(b.runId));
}

/** Every file under `relativePath`, recursively, as paths relative to the artifact root. */
export async function listArtifactFiles(
  store: TrackingStore,
  runId: string,
  relativePath = '',
): Promise<ArtifactEntry[]> {
  const files: ArtifactEntry[] = [];
  for (const entry of await store.listArtifacts(runId, relativePath)) {
    if (entry.isDir) files.push(...(await listArtifactFiles(store, runId, entry.path)));
    else files.push(entry);
  }
  return files;
}
