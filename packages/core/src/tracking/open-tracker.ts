import { InterleaveError } from '../errors.js';
import { FileTrackingStore } from './file-store.js';
import { isFileStoreUri } from './file-store-format.js';
import { annotateFileStoreRun, openFileStoreRun, resumeFileStoreRun } from './mlflow-file-store.js';
import { RestRun, type RestRunOptions } from './rest/rest-run.js';
import { RestTrackingStore } from './rest/rest-store.js';
import { sendPending } from './rest/wal-sender.js';
import { defaultWalDirectory, WriteAheadLog } from './rest/write-ahead-log.js';
import type { TrackingStore } from './store.js';
import type { OpenRunOptions, ResumeRunOptions, Tracker } from './tracker.js';

/** Options of runs on a tracking server; the file store ignores them. */
export interface ServerRunOptions extends RestRunOptions {
  /** Where write-ahead logs go (default `INTERLEAVE_MLFLOW_WAL_DIR` or `./.interleave/mlflow-wal`). */
  walDirectory?: string;
}

/**
 * The tracking store that `uri` names (docs/design.md#mlflow-tracking-stores): a path or
 * `file:` URI is MLflow's file store, `http(s)://` a tracking server.
 */
export function openStore(uri: string): TrackingStore {
  if (isServerUri(uri)) return new RestTrackingStore(uri);
  if (!isFileStoreUri(uri)) {
    throw new InterleaveError(`unsupported MLflow tracking URI '${uri}': use a path, a file:/// URI, or http(s)://`);
  }
  return new FileTrackingStore(uri);
}

export function isServerUri(uri: string): boolean {
  return /^https?:\/\//i.test(uri);
}

/** Opens a new run on the MLflow backend that `options.uri` names. */
export async function openTracker(options: OpenRunOptions & ServerRunOptions): Promise<Tracker> {
  const store = openStore(options.uri);
  if (!(store instanceof RestTrackingStore)) return openFileStoreRun(options);
  const experiment = await store.getOrCreateExperiment(options.experiment);
  const user = options.user ?? process.env.USER ?? process.env.LOGNAME ?? 'unknown';
  const run = await store.createRun(experiment.experimentId, {
    runName: options.runName,
    userId: user,
    tags: { 'mlflow.user': user, 'mlflow.source.type': 'LOCAL' },
  });
  const log = WriteAheadLog.open(options.walDirectory ?? defaultWalDirectory(), {
    version: 1,
    uri: store.displayUri,
    runId: run.runId,
  });
  return new RestRun(store, run.runId, run.experimentId, run.artifactUri, log, options);
}

/** Reopens an existing run to continue it from a checkpoint. */
export async function resumeTracker(options: ResumeRunOptions & ServerRunOptions): Promise<Tracker> {
  const store = openStore(options.uri);
  if (!(store instanceof RestTrackingStore)) return resumeFileStoreRun(options);
  const log = WriteAheadLog.open(options.walDirectory ?? defaultWalDirectory(), {
    version: 1,
    uri: store.displayUri,
    runId: options.runId,
  });
  // What the crashed attempt left unsent goes first, so the server's history is complete.
  await sendPending(log, store);
  const run = await store.getRun(options.runId);
  if (run.status === 'FINISHED') {
    throw new InterleaveError(`MLflow run ${run.runId} has already finished; nothing to resume`);
  }
  const alreadyLogged = new Set<string>();
  for (const key of run.metricKeys) {
    for (const point of await store.getMetricHistory(run.runId, key)) {
      if (point.step > options.afterStep) alreadyLogged.add(`${key}\n${point.step}`);
    }
  }
  log.append([{ kind: 'update', status: 'RUNNING', endTime: null }]);
  return new RestRun(store, run.runId, run.experimentId, run.artifactUri, log, { ...options, alreadyLogged });
}

/**
 * Opens an existing run, whatever its status, to add metrics, tags and artifacts (an
 * evaluation of a finished run) without touching its status. `end` only sends what was logged.
 */
export async function annotateRun(options: { uri: string; runId: string } & ServerRunOptions): Promise<Tracker> {
  const store = openStore(options.uri);
  if (!(store instanceof RestTrackingStore)) return annotateFileStoreRun(options);
  const run = await store.getRun(options.runId);
  const log = WriteAheadLog.open(options.walDirectory ?? defaultWalDirectory(), {
    version: 1,
    uri: store.displayUri,
    runId: run.runId,
  });
  return new RestRun(store, run.runId, run.experimentId, run.artifactUri, log, { ...options, annotateOnly: true });
}
