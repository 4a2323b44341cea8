import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { InterleaveError } from '../errors.js';
import { type ExperimentInfo, listSubfolders, META_FILE, scanExperiments } from './file-store-experiments.js';
import {
  type MetricPoint,
  parseMetaYaml,
  parseMetricLine,
  resolveFileStoreRoot,
  runStatusFromCode,
} from './file-store-format.js';
import { validateKey } from './mlflow-names.js';
import type { RunRecord } from './store.js';

/** A run as the file store holds it, plus the folder it lives in. */
export interface FileRunRecord extends RunRecord {
  /** Absolute folder of the run. */
  directory: string;
}

/** Active experiments of the store at `uri`; an absent store has none. */
export async function listExperiments(uri: string): Promise<ExperimentInfo[]> {
  return scanExperiments(resolveFileStoreRoot(uri));
}

/** The active experiment named `name` in the store at `uri`, if there is one. */
export async function findExperiment(uri: string, name: string): Promise<ExperimentInfo | undefined> {
  return (await listExperiments(uri)).find((candidate) => candidate.name === name);
}

/**
 * The active experiment named `name`; an unknown name is the user's mistake (a typo, the wrong
 * `--uri`), so the error lists the experiments that do exist.
 */
export async function requireExperiment(uri: string, name: string): Promise<ExperimentInfo> {
  const experiments = await listExperiments(uri);
  const experiment = experiments.find((candidate) => candidate.name === name);
  if (experiment !== undefined) return experiment;
  const names = experiments.map((candidate) => `'${candidate.name}'`).join(', ');
  throw new InterleaveError(
    `unknown MLflow experiment '${name}' in ${uri} (${names === '' ? 'the store has no experiments' : `experiments: ${names}`})`,
  );
}

/** Runs of the active experiment named `experimentName`, oldest first; none if it does not exist. */
export async function findRuns(uri: string, experimentName: string): Promise<FileRunRecord[]> {
  const experiment = await findExperiment(uri, experimentName);
  if (!experiment) return [];
  const runs: FileRunRecord[] = [];
  for (const folder of await listSubfolders(experiment.directory)) {
    const run = await readRun(join(experiment.directory, folder));
    if (run) runs.push(run);
  }
  return runs.sort((a, b) => a.startTime - b.startTime || a.runId.localeCompare(b.runId));
}

/**
 * Runs of experiment `experimentName` that carry tag `key` (with exactly `value`, if given),
 * oldest first. Only the tag file is read for the others, so finding a sweep's few runs among
 * thousands stays cheap.
 */
export async function findRunsWithTag(
  uri: string,
  experimentName: string,
  key: string,
  value?: string,
): Promise<FileRunRecord[]> {
  validateKey('tag', key);
  const experiment = await findExperiment(uri, experimentName);
  if (!experiment) return [];
  const runs: FileRunRecord[] = [];
  for (const folder of await listSubfolders(experiment.directory)) {
    const directory = join(experiment.directory, folder);
    const tag = await readFile(join(directory, 'tags', key), 'utf8').catch(() => undefined);
    if (tag === undefined || (value !== undefined && tag !== value)) continue;
    const run = await readRun(directory);
    if (run) runs.push(run);
  }
  return runs.sort((a, b) => a.startTime - b.startTime || a.runId.localeCompare(b.runId));
}

/** Every logged value of metric `key` in run `runId`, in logging order; empty if never logged. */
export async function readMetricHistory(uri: string, runId: string, key: string): Promise<MetricPoint[]> {
  validateKey('metric', key);
  const run = await findRunDirectory(resolveFileStoreRoot(uri), runId);
  let text: string;
  try {
    text = await readFile(join(run, 'metrics', key), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map(parseMetricLine);
}

export async function findRunDirectory(root: string, runId: string): Promise<string> {
  if (!/^[A-Za-z0-9][\w-]*$/.test(runId)) throw new InterleaveError(`invalid MLflow run id '${runId}'`);
  for (const experiment of await scanExperiments(root, true)) {
    const candidate = join(experiment.directory, runId);
    if (await stat(join(candidate, META_FILE)).catch(() => undefined)) return candidate;
  }
  throw new InterleaveError(`MLflow run ${runId} not found in ${root}`);
}

export async function readRun(directory: string): Promise<FileRunRecord | undefined> {
  let meta: Record<string, unknown>;
  try {
    meta = parseMetaYaml(await readFile(join(directory, META_FILE), 'utf8'));
  } catch {
    // Experiment folders also hold tags/, datasets/, traces/ and runs being created.
    return undefined;
  }
  const runId = String(meta.run_id ?? meta.run_uuid ?? '');
  if (runId === '') return undefined;
  const tags = await readKeyFiles(join(directory, 'tags'));
  return {
    runId,
    runName: String(meta.run_name ?? tags['mlflow.runName'] ?? ''),
    experimentId: String(meta.experiment_id),
    status: runStatusFromCode(meta.status),
    startTime: Number(meta.start_time),
    endTime: typeof meta.end_time === 'number' ? meta.end_time : null,
    userId: String(meta.user_id ?? ''),
    lifecycleStage: String(meta.lifecycle_stage ?? 'active'),
    artifactUri: String(meta.artifact_uri ?? ''),
    directory,
    params: await readKeyFiles(join(directory, 'params')),
    tags,
    metricKeys: Object.keys(await listKeyFiles(join(directory, 'metrics'))),
  };
}

/** Files under `folder` keyed by their `/`-separated relative path, as MLflow names keys. */
async function readKeyFiles(folder: string): Promise<Record<string, string>> {
  const values: Record<string, string> = {};
  for (const [key, path] of Object.entries(await listKeyFiles(folder))) values[key] = await readFile(path, 'utf8');
  return values;
}

async function listKeyFiles(folder: string): Promise<Record<string, string>> {
  try {
    const entries = await readdir(folder, { recursive: true, withFileTypes: true });
    const files: Record<string, string> = {};
    for (const entry of entries.filter((candidate) => candidate.isFile())) {
      const path = join(entry.parentPath, entry.name);
      files[relative(folder, path).split(sep).join('/')] = path;
    }
    return Object.fromEntries(Object.entries(files).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw error;
  }
}
