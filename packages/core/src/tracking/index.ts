export { type CopiedRun, copyRuns, ORIGIN_TAGS } from './copy-runs.js';
export { FileTrackingStore } from './file-store.js';
export { type FileStoreRunLocation, findRunFolder, runHoldingArtifact } from './file-store-runs.js';
export { annotateFileStoreRun, openFileStoreRun, resumeFileStoreRun } from './mlflow-file-store.js';
export {
  annotateRun,
  isServerUri,
  openStore,
  openTracker,
  resumeTracker,
  type ServerRunOptions,
} from './open-tracker.js';
export {
  findExperiment,
  findRuns,
  findRunsWithTag,
  listExperiments,
  readMetricHistory,
  requireExperiment,
} from './queries.js';
export { MlflowApiError, MlflowUnreachableError } from './rest/errors.js';
export { type HttpClientOptions, MlflowHttpClient } from './rest/http-client.js';
export { LOG_BATCH_LIMITS, splitLogBatch } from './rest/log-batch-limits.js';
export { RestRun, type RestRunOptions } from './rest/rest-run.js';
export { type RestStoreOptions, RestTrackingStore } from './rest/rest-store.js';
export { type SyncedLog, syncWriteAheadLogs } from './rest/sync.js';
export { defaultWalDirectory, WriteAheadLog } from './rest/write-ahead-log.js';
export type {
  ArtifactEntry,
  CreateRunOptions,
  ExperimentSummary,
  LogBatch,
  MetricPoint,
  MetricRecord,
  RunPage,
  RunQuery,
  RunRecord,
  RunUpdate,
  TrackingStore,
} from './store.js';
export { listArtifactFiles, searchAllRuns } from './store.js';
export type { OpenRunOptions, ResumeRunOptions, RunStatus, Tracker } from './tracker.js';
