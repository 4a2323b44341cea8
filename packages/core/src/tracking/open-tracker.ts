import { InterleaveError } from '../errors.js';
import { isFileStoreUri } from './file-store-format.js';
import { openFileStoreRun } from './mlflow-file-store.js';
import type { OpenRunOptions, Tracker } from './tracker.js';

/** Opens a run on the MLflow backend that `options.uri` names (SPEC §5). */
export async function openTracker(options: OpenRunOptions): Promise<Tracker> {
  if (/^https?:\/\//i.test(options.uri)) {
    throw new InterleaveError(
      `MLflow tracking URI '${options.uri}' needs the REST client, which is not available yet; use a local path such as ./mlruns for now`,
    );
  }
  if (!isFileStoreUri(options.uri)) {
    throw new InterleaveError(
      `unsupported MLflow tracking URI '${options.uri}': use a path, a file:/// URI, or (later) http(s)://`,
    );
  }
  return openFileStoreRun(options);
}
