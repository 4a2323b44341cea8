import { InterleaveError } from '../errors.js';
import { isFileStoreUri } from './file-store-format.js';
import { openFileStoreRun, resumeFileStoreRun } from './mlflow-file-store.js';
import type { OpenRunOptions, ResumeRunOptions, Tracker } from './tracker.js';

/** Opens a run on the MLflow backend that `options.uri` names (docs/design.md#mlflow-file-store). */
export async function openTracker(options: OpenRunOptions): Promise<Tracker> {
  checkSupported(options.uri);
  return openFileStoreRun(options);
}

/** Reopens an existing run to continue it from a checkpoint. */
export async function resumeTracker(options: ResumeRunOptions): Promise<Tracker> {
  checkSupported(options.uri);
  return resumeFileStoreRun(options);
}

function checkSupported(uri: string): void {
  if (/^https?:\/\//i.test(uri)) {
    throw new InterleaveError(
      `MLflow tracking URI '${uri}' needs the REST client, which is not available yet; use a local path such as ./mlruns for now`,
    );
  }
  if (!isFileStoreUri(uri)) {
    throw new InterleaveError(
      `unsupported MLflow tracking URI '${uri}': use a path, a file:/// URI, or (later) http(s)://`,
    );
  }
}
