import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { META_FILE } from './file-store-experiments.js';
import { listExperiments } from './file-store-reader.js';

/** The folder of a run that holds what it logged with `logArtifact`. */
const ARTIFACTS_FOLDER = 'artifacts';

/** A run of a file store, found from a path: the store, the run's id and its folder. */
export interface FileStoreRunLocation {
  /** The store's root folder, usable as a tracking URI. */
  readonly uri: string;
  readonly runId: string;
  readonly directory: string;
}

/** The folder of run `runId` in an active experiment of the store at `uri`; undefined when none holds it. */
export async function findRunFolder(uri: string, runId: string): Promise<string | undefined> {
  for (const experiment of await listExperiments(uri)) {
    const directory = join(experiment.directory, runId);
    if (existsSync(join(directory, META_FILE))) return directory;
  }
  return undefined;
}

/**
 * The run whose artifacts hold `path` (`<store>/<experiment>/<run>/artifacts/…`), or undefined
 * when `path` lies in no run's artifacts (e.g. a weights file copied elsewhere).
 */
export function runHoldingArtifact(path: string): FileStoreRunLocation | undefined {
  for (let folder = dirname(resolve(path)); folder !== dirname(folder); folder = dirname(folder)) {
    const directory = dirname(folder);
    if (basename(folder) === ARTIFACTS_FOLDER && existsSync(join(directory, META_FILE))) {
      return { uri: dirname(dirname(directory)), runId: basename(directory), directory };
    }
  }
  return undefined;
}
