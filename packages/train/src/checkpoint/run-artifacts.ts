import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { listArtifactFiles, openStore, type Tracker } from '@interleave/core';

/**
 * Logs the files `write` writes as artifacts under `prefix` through the run's tracker: the
 * tracking store decides where artifacts live (the file store's folder, a server's artifact
 * proxy), never the writer. A tracker without `logArtifacts` gets them one by one from a
 * temporary folder.
 */
export async function logFolderArtifacts(
  tracker: Tracker,
  prefix: string,
  write: (folder: string) => Promise<void>,
): Promise<void> {
  if (tracker.logArtifacts) return tracker.logArtifacts(prefix, write);
  const staging = await mkdtemp(join(tmpdir(), 'interleave-artifacts-'));
  try {
    await write(staging);
    for (const file of await listFiles(staging)) {
      const relativePath = relative(staging, file).split(sep).join('/');
      await tracker.logArtifact(`${prefix}/${relativePath}`, new Uint8Array(await readFile(file)));
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/**
 * Downloads the artifacts of run `runId` under each of `paths` (files or folders) from the
 * store at `uri` into `<target>/artifacts/…`, the layout of a run folder, and returns `target`.
 */
export async function downloadRunArtifacts(
  uri: string,
  runId: string,
  paths: readonly string[],
  target: string,
): Promise<string> {
  const store = openStore(uri);
  try {
    for (const path of paths) {
      const listed = await listArtifactFiles(store, runId, path);
      // A file lists as nothing: it is fetched by its own path.
      const files = listed.length > 0 ? listed.map((entry) => entry.path) : [path];
      for (const file of files) {
        const bytes = await store.downloadArtifact(runId, file);
        const destination = join(target, 'artifacts', ...file.split('/'));
        await mkdir(dirname(destination), { recursive: true });
        await writeFile(destination, bytes);
      }
    }
  } finally {
    await store.close?.();
  }
  return target;
}

/** A fresh local folder for the artifacts of run `runId`, under the system's temporary folder. */
export async function downloadFolderFor(runId: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `interleave-run-${runId.slice(0, 8)}-`));
}

async function listFiles(folder: string): Promise<string[]> {
  const entries = await readdir(folder, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}
