import { mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ownerIsGone } from './abandoned-runs.js';
import type { TrackingTarget } from './plan.js';
import { runOwner } from './trial-runs.js';

/** A trial this process holds: no other local sweep on the same store runs it until `release`. */
export interface TrialClaim {
  release(): Promise<void>;
}

/**
 * Claims trial `trialId` for this process, like the queue's claim but in the store itself: a
 * file created exclusively beside the experiments (`<store>/.claim-<trial id>`, naming its
 * owner as `host:pid`; MLflow reads only folders there). Resolves to undefined while a live
 * process holds it; a claim whose process is gone (a killed sweep) is taken over. A store
 * that is not a folder (an MLflow server) has no place for it: the claim is then always
 * granted, and the finish gate alone keeps a trial from finishing twice.
 */
export async function claimTrial(tracking: TrackingTarget, trialId: string): Promise<TrialClaim | undefined> {
  const root = storeFolder(tracking.uri);
  if (root === undefined) return { release: async () => undefined };
  const file = join(root, `.claim-${trialId}`);
  const owner = runOwner();
  await mkdir(root, { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(file, `${owner}\n`, { flag: 'wx' });
      return { release: () => releaseClaim(file, owner) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = (await readFile(file, 'utf8').catch(() => '')).trim();
    // Being written this instant, or held by a live process: not ours to take.
    if (holder === '' || !ownerIsGone(holder)) return undefined;
    await unlink(file).catch(() => undefined);
  }
  return undefined;
}

async function releaseClaim(file: string, owner: string): Promise<void> {
  const holder = (await readFile(file, 'utf8').catch(() => '')).trim();
  if (holder === owner) await unlink(file).catch(() => undefined);
}

/** The folder of a file store (`./mlruns`, `/abs/mlruns`, `file:///abs/mlruns`); undefined for a server URI. */
function storeFolder(uri: string): string | undefined {
  if (uri.startsWith('file:')) return fileURLToPath(uri);
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(uri) && !isAbsolute(uri)) return undefined;
  return resolve(uri);
}
