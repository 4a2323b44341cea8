import { posix } from 'node:path';
import { InterleaveError } from '../errors.js';

/** MLflow's limits (mlflow/utils/validation.py); the SQL stores reject longer values. */
export const MAX_KEY_LENGTH = 250;
export const MAX_PARAM_VALUE_LENGTH = 6000;
export const MAX_TAG_VALUE_LENGTH = 8000;
export const MAX_EXPERIMENT_NAME_LENGTH = 500;

// MLflow also allows ':' except on Windows; leaving it out keeps a store readable everywhere.
const ALLOWED_KEY_CHARACTERS = /^[\p{L}\p{N}_\-. /]+$/u;

export type KeyKind = 'param' | 'metric' | 'tag';

/**
 * Checks a param, metric or tag key the way MLflow does: the key becomes a file path under
 * `params/`, `metrics/` or `tags/`, so it must be a normalised relative path (`/` makes
 * subfolders) that cannot name another key or escape the run folder.
 */
export function validateKey(kind: KeyKind, key: string): void {
  if (key === '') throw new InterleaveError(`MLflow ${kind} key must not be empty`);
  if (!ALLOWED_KEY_CHARACTERS.test(key)) {
    throw new InterleaveError(
      `invalid MLflow ${kind} key ${JSON.stringify(key)}: use only letters, digits, '_', '-', '.', ' ' and '/'`,
    );
  }
  if (!isNormalisedRelativePath(key)) {
    throw new InterleaveError(
      `invalid MLflow ${kind} key ${JSON.stringify(key)}: it must be a plain relative path (no '..', '.', '//', leading or trailing '/')`,
    );
  }
  if (key.length > MAX_KEY_LENGTH) {
    throw new InterleaveError(`MLflow ${kind} key '${key.slice(0, 40)}…' is longer than ${MAX_KEY_LENGTH} characters`);
  }
}

/** Artifact paths may use any file name characters but must stay inside `artifacts/`. */
export function validateArtifactPath(relativePath: string): void {
  if (relativePath.includes('\\') || relativePath.includes('\0') || !isNormalisedRelativePath(relativePath)) {
    throw new InterleaveError(
      `invalid artifact path ${JSON.stringify(relativePath)}: it must be a relative path with '/' separators inside the run's artifacts`,
    );
  }
}

export function validateExperimentName(name: string): void {
  if (name.trim() === '') throw new InterleaveError('MLflow experiment name must not be empty');
  if (name.length > MAX_EXPERIMENT_NAME_LENGTH) {
    throw new InterleaveError(`MLflow experiment name is longer than ${MAX_EXPERIMENT_NAME_LENGTH} characters`);
  }
}

export function validateValueLength(kind: 'param' | 'tag', key: string, value: string): void {
  const limit = kind === 'param' ? MAX_PARAM_VALUE_LENGTH : MAX_TAG_VALUE_LENGTH;
  if (value.length > limit) {
    throw new InterleaveError(
      `MLflow ${kind} '${key}' has a value of ${value.length} characters; the limit is ${limit}`,
    );
  }
}

/**
 * Mirrors MLflow's `path_not_unique`: the path must equal its own normal form. Node keeps a
 * trailing '/' that Python's normpath drops, hence the extra check.
 */
function isNormalisedRelativePath(path: string): boolean {
  const normal = posix.normalize(path);
  return (
    normal === path && normal !== '.' && !normal.startsWith('..') && !normal.startsWith('/') && !normal.endsWith('/')
  );
}
