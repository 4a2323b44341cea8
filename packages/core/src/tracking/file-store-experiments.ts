import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InterleaveError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import { fileErrorReason } from '../io/file-error-reason.js';
import { parseMetaYaml, toFileUri, toMetaYaml } from './file-store-format.js';
import { validateExperimentName } from './mlflow-names.js';

export const DEFAULT_EXPERIMENT_ID = '0';
export const DEFAULT_EXPERIMENT_NAME = 'Default';
export const TRASH_FOLDER = '.trash';
export const META_FILE = 'meta.yaml';

export interface ExperimentInfo {
  experimentId: string;
  name: string;
  /** `file:///…/<root>/<id>` where runs keep their artifacts. */
  artifactLocation: string;
  lifecycleStage: string;
  creationTime: number | undefined;
  /** Absolute folder of the experiment. */
  directory: string;
}

/**
 * Makes `root` a file store the way MLflow's FileStore constructor does: a new root gets the
 * 'Default' experiment (id 0), and every root gets `.trash/`, which MLflow's readers expect.
 */
export async function ensureStoreRoot(root: string): Promise<void> {
  const existing = await stat(root).catch(() => undefined);
  if (existing && !existing.isDirectory()) {
    throw new InterleaveError(`MLflow tracking path ${root} exists and is not a folder`);
  }
  try {
    if (!existing) {
      await mkdir(root, { recursive: true });
      await createExperimentFolder(root, DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME);
    }
    await mkdir(join(root, TRASH_FOLDER), { recursive: true });
  } catch (error) {
    if (error instanceof InterleaveError) throw error;
    throw new InterleaveError(`cannot write the MLflow store at ${root}: ${describeFsError(error)}`);
  }
}

/** Active experiments (folders under `root` with a readable meta.yaml), or also deleted ones. */
export async function scanExperiments(root: string, includeDeleted = false): Promise<ExperimentInfo[]> {
  const parents = includeDeleted ? [root, join(root, TRASH_FOLDER)] : [root];
  const experiments: ExperimentInfo[] = [];
  for (const parent of parents) {
    for (const id of await listSubfolders(parent)) {
      if (id === TRASH_FOLDER) continue;
      const experiment = await readExperiment(join(parent, id));
      if (experiment) experiments.push(experiment);
    }
  }
  return experiments;
}

/**
 * Finds the active experiment called `name`, creating it if there is none.
 *
 * Ids are derived from the name (a hash, 18 digits like MLflow's random ids) rather than drawn
 * at random: two processes creating the same experiment at once then aim at the same folder,
 * and the exclusive `mkdir` of that folder decides who writes meta.yaml. The loser adopts the
 * winner's experiment instead of creating a duplicate. An id taken by another name (a hash
 * collision, or a renamed experiment) moves every process on to the same next candidate.
 */
export async function findOrCreateExperiment(root: string, name: string): Promise<ExperimentInfo> {
  validateExperimentName(name);
  for (let attempt = 0; attempt < 16; attempt++) {
    const known = await scanExperiments(root, true);
    const sameName = known.filter((experiment) => experiment.name === name);
    const active = sameName.find((experiment) => experiment.lifecycleStage === 'active');
    if (active) return active;
    if (sameName.length > 0) {
      throw new InterleaveError(
        `MLflow experiment '${name}' is deleted (in ${join(root, TRASH_FOLDER)}); restore it or choose another name`,
      );
    }
    const id = candidateExperimentId(name, attempt);
    if (known.some((experiment) => experiment.experimentId === id)) continue;
    if (await claimExperimentFolder(root, id, name)) return (await readExperiment(join(root, id)))!;
    // Another process claimed this id; its meta.yaml (or a rescan) tells whether it is ours.
    const claimed = await waitForExperiment(join(root, id));
    if (claimed?.name === name) return claimed;
    if (!claimed) {
      // The claimer died between mkdir and writing meta.yaml: finish its job, same content.
      await writeExperimentMeta(root, id, name);
      return (await readExperiment(join(root, id)))!;
    }
  }
  throw new InterleaveError(`could not find a free experiment id for '${name}' in ${root}`);
}

/** 18 decimal digits without a leading zero: fits MLflow's int64 experiment ids. */
function candidateExperimentId(name: string, attempt: number): string {
  const digest = createHash('sha256').update(`${name}\n${attempt}`).digest();
  const value = digest.readBigUInt64BE(0) % 900_000_000_000_000_000n;
  return String(value + 100_000_000_000_000_000n);
}

async function claimExperimentFolder(root: string, id: string, name: string): Promise<boolean> {
  try {
    await mkdir(join(root, id));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new InterleaveError(`cannot create an MLflow experiment in ${root}: ${describeFsError(error)}`);
  }
  await writeExperimentMeta(root, id, name);
  return true;
}

async function createExperimentFolder(root: string, id: string, name: string): Promise<void> {
  try {
    await mkdir(join(root, id));
  } catch (error) {
    // A concurrent process created the same store root first.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw error;
  }
  await writeExperimentMeta(root, id, name);
}

async function writeExperimentMeta(root: string, id: string, name: string): Promise<void> {
  const now = Date.now();
  const meta = {
    artifact_location: toFileUri(join(root, id)),
    creation_time: now,
    experiment_id: id,
    last_update_time: now,
    lifecycle_stage: 'active',
    name,
  };
  await writeFileAtomic(join(root, id, META_FILE), toMetaYaml(meta));
}

async function waitForExperiment(directory: string): Promise<ExperimentInfo | undefined> {
  for (let waited = 0; waited < 5000; waited += 50) {
    const experiment = await readExperiment(directory);
    if (experiment) return experiment;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return undefined;
}

async function readExperiment(directory: string): Promise<ExperimentInfo | undefined> {
  let meta: Record<string, unknown>;
  try {
    meta = parseMetaYaml(await readFile(join(directory, META_FILE), 'utf8'));
  } catch {
    // Not an experiment (or one being created): MLflow skips these too.
    return undefined;
  }
  const id = directory.split(/[\\/]/).pop()!;
  return {
    // Old MLflow versions wrote the id as a number.
    experimentId: meta.experiment_id === undefined ? id : String(meta.experiment_id),
    name: String(meta.name ?? ''),
    artifactLocation: String(meta.artifact_location ?? ''),
    lifecycleStage: String(meta.lifecycle_stage ?? 'active'),
    creationTime: typeof meta.creation_time === 'number' ? meta.creation_time : undefined,
    directory,
  };
}

export async function listSubfolders(directory: string): Promise<string[]> {
  try {
    const entries = await readdir(directory, { withFileTypes: true });
    return entries
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

export function describeFsError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  const reasons: Record<string, string> = {
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EROFS: 'read-only file system',
    ENOTDIR: 'a part of the path is a file, not a folder',
    ENOSPC: 'no space left on device',
  };
  return (code && reasons[code]) ?? fileErrorReason(error) ?? (error as Error).message;
}
