export type { ExperimentInfo, MetricPoint, RunRecord } from './file-store-reader.js';
export {
  findExperiment,
  findRuns,
  findRunsWithTag,
  listExperiments,
  readMetricHistory,
  requireExperiment,
} from './file-store-reader.js';
export { type FileStoreRunLocation, findRunFolder, runHoldingArtifact } from './file-store-runs.js';
export { annotateFileStoreRun, openFileStoreRun, resumeFileStoreRun } from './mlflow-file-store.js';
export { openTracker, resumeTracker } from './open-tracker.js';
export type { OpenRunOptions, ResumeRunOptions, RunStatus, Tracker } from './tracker.js';
