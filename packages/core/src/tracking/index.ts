export type { ExperimentInfo, MetricPoint, RunRecord } from './file-store-reader.js';
export { findRuns, listExperiments, readMetricHistory } from './file-store-reader.js';
export { openFileStoreRun } from './mlflow-file-store.js';
export { openTracker } from './open-tracker.js';
export type { OpenRunOptions, RunStatus, Tracker } from './tracker.js';
