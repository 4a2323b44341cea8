import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { findRuns } from '@interleave/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModelFromCheckpoint } from '../../src/checkpoint/load-model.js';
import { CLI, expectOneCleanLine, scratchDirectory, tinyConfig } from './support.js';

/**
 * Full and read-only file systems. As root (CI), each is a real tmpfs mounted for the test: a
 * small one fills up, a read-only one refuses every write. Elsewhere the same faults come from
 * a file-size limit (`ulimit -f`, so writes fail with EFBIG) and a folder without write
 * permission; the messages differ only in the reason.
 */
const PAGE = 4096;
const mounted: string[] = [];

function tryMount(dir: string, options: string): boolean {
  return spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]).status === 0;
}

const canMount = (() => {
  if (process.getuid?.() !== 0) return false;
  const probe = scratchDirectory('mount-probe');
  const ok = tryMount(probe, 'size=64k');
  if (ok) spawnSync('umount', [probe]);
  return ok;
})();

/** A folder whose file system holds `bytes` (tmpfs), or undefined where the test must use a file-size limit. */
function smallDisk(dir: string, bytes: number): string {
  mkdirSync(dir, { recursive: true });
  if (canMount) {
    expect(tryMount(dir, `size=${bytes}`)).toBe(true);
    mounted.push(dir);
  }
  return dir;
}

function readOnlyFolder(dir: string): string {
  mkdirSync(dir, { recursive: true });
  if (canMount) {
    expect(tryMount(dir, 'size=64k,ro')).toBe(true);
    mounted.push(dir);
  } else chmodSync(dir, 0o555);
  return dir;
}

/** `interleave` in `cwd`, under a file-size limit of `limitBytes` where no tmpfs could be mounted. */
function interleave(args: string[], cwd: string, limitBytes?: number) {
  const limit = !canMount && limitBytes !== undefined ? `ulimit -f ${Math.floor(limitBytes / 1024)}; ` : '';
  const result = spawnSync('bash', ['-c', `${limit}exec "$0" "$@"`, process.execPath, CLI, ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, INTERLEAVE_BACKEND: 'cpu' },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const FULL = canMount ? 'no space left on device' : 'file too large';
const READ_ONLY = canMount ? 'read-only file system' : 'permission denied';
const pages = (file: string) => Math.ceil(statSync(file).size / PAGE);

let dir: string;

describe('a full disk and a read-only folder', () => {
  beforeAll(() => {
    dir = scratchDirectory('disk-faults', {
      'config.yaml': tinyConfig('disk', 6, '  checkpoint_every: 2\n'),
    });
  });
  afterAll(() => {
    for (const mount of mounted.reverse()) spawnSync('umount', ['-l', mount]);
  });

  it('a checkpoint that fills the disk fails the run in one line, leaving the previous checkpoint whole', async () => {
    // A first, short run creates the experiment and shows how large a checkpoint's files are.
    expect(interleave(['train', 'config.yaml', '--set', 'train.steps=2'], dir).status).toBe(0);
    const [reference] = await findRuns(join(dir, 'mlruns'), 'disk');
    const artifacts = fileURLToPath(reference!.artifactUri);
    const checkpointFiles = ['model.safetensors', 'optimizer.safetensors', 'trainer.json'];
    const model = pages(join(artifacts, 'checkpoint', 'model.safetensors'));
    expect(model).toBeGreaterThanOrEqual(2);
    // Room for the run's config and one checkpoint, and half of the next weights file: the
    // second checkpoint runs out of space while its model file is being written beside the first.
    const room =
      pages(join(artifacts, 'config.yaml')) +
      checkpointFiles.reduce((sum, file) => sum + pages(join(artifacts, 'checkpoint', file)), 0) +
      Math.floor(model / 2);
    // The experiment's artifacts go to the small disk; the store itself stays writable.
    const disk = smallDisk(join(dir, 'artifact-disk'), room * PAGE);
    const meta = join(runFolder(reference!), '..', 'meta.yaml');
    writeFileSync(
      meta,
      readFileSync(meta, 'utf8').replace(/^artifact_location: .*$/m, `artifact_location: ${pathToFileURL(disk).href}`),
    );

    const { status, stderr } = interleave(
      ['train', 'config.yaml'],
      dir,
      statSync(join(artifacts, 'checkpoint', 'model.safetensors')).size + 100,
    );
    expect(status).toBe(1);
    // Under a file-size limit the first checkpoint's larger optimizer file is the one refused.
    const refused = canMount ? 'model.safetensors' : 'optimizer.safetensors';
    expectOneCleanLine(stderr, `cannot write ${disk}`, `${refused}: ${FULL}`);

    const runs = await findRuns(join(dir, 'mlruns'), 'disk');
    const failed = runs.find((run) => run.runId !== reference!.runId);
    expect(failed?.status).toBe('FAILED');
    expect(readFileSync(join(runFolder(failed!), 'tags', 'interleave.error'), 'utf8')).toContain(FULL);
    if (canMount) {
      const checkpoint = join(disk, failed!.runId, 'artifacts', 'checkpoint');
      expect(readdirSync(checkpoint).sort()).toEqual(checkpointFiles);
      expect(JSON.parse(readFileSync(join(checkpoint, 'trainer.json'), 'utf8')).step).toBe(2);
      const { model: loaded } = await loadModelFromCheckpoint(checkpoint);
      loaded.dispose();
    }
  });

  it('a store on a full disk fails in one line naming what could not be written', () => {
    const disk = smallDisk(join(dir, 'store-disk'), 4 * PAGE);
    const { status, stderr } = interleave(
      ['train', 'config.yaml', '--set', `tracking.uri=${join(disk, 'mlruns')}`],
      dir,
      0,
    );
    expect(status).toBe(1);
    expectOneCleanLine(stderr, FULL);
  });

  it('a store in a read-only folder fails in one line before training', () => {
    const folder = readOnlyFolder(join(dir, 'read-only-store'));
    const { status, stdout, stderr } = interleave(
      ['train', 'config.yaml', '--set', `tracking.uri=${join(folder, 'mlruns')}`],
      dir,
    );
    expect(status).toBe(1);
    expectOneCleanLine(stderr, join(folder, 'mlruns'), READ_ONLY);
    expect(stdout).not.toMatch(/step \d/);
  });

  it('a report written to a full disk or a read-only folder fails in one line naming the file', () => {
    const full = smallDisk(join(dir, 'report-disk'), 2 * PAGE);
    const intoFull = interleave(['report', 'disk', '--out', join(full, 'report'), '--no-log'], dir, 0);
    expect(intoFull.status).toBe(1);
    expectOneCleanLine(intoFull.stderr, `cannot write ${join(full, 'report')}`, FULL);
    // Written atomically: no half-written report is left behind.
    expect(readdirSync(join(full, 'report')).filter((name) => name.includes('.tmp-'))).toEqual([]);

    const readOnly = readOnlyFolder(join(dir, 'read-only-report'));
    const intoReadOnly = interleave(['report', 'disk', '--out', join(readOnly, 'report'), '--no-log'], dir);
    expect(intoReadOnly.status).toBe(1);
    expectOneCleanLine(intoReadOnly.stderr, join(readOnly, 'report'), READ_ONLY);
  });
});

/** The run's folder in the file store (its artifacts may live elsewhere: see the experiment's artifact_location). */
function runFolder(run: { experimentId: string; runId: string }): string {
  return join(dir, 'mlruns', run.experimentId, run.runId);
}
