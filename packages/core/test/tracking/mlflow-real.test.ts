import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findRuns, openFileStoreRun } from '../../src/tracking/index.js';
import { ensurePythonVenv, type PythonVenv, runCommand } from '../support/python-venv.js';

/**
 * MLflow 3.18 is the newest release (2026-11), but the registry this project installs from
 * serves mlflow 3.18.0 without its pinned mlflow-skinny/mlflow-tracing 3.18.0, so pip cannot
 * install it; 3.17.2 is the newest complete release there. It has the same file store reader
 * and the same `migrate-filestore` code. Bump this when 3.18's parts are installable.
 */
const MLFLOW_VERSION = '3.17.2';
const READER_SCRIPT = fileURLToPath(new URL('./read_with_mlflow.py', import.meta.url));
const MAX_DOUBLE = 1.7976931348623157e308;

let venv: PythonVenv;
let workDir: string;

beforeAll(async () => {
  // A fresh install downloads ~100 MB of wheels; later runs only re-check the venv.
  venv = await ensurePythonVenv('mlflow', [`mlflow==${MLFLOW_VERSION}`]);
  workDir = await mkdtemp(join(tmpdir(), 'interleave-real-mlflow-'));
}, 30 * 60_000);

afterAll(async () => {
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

interface WrittenRun {
  runId: string;
  runName: string;
  status: 'FINISHED' | 'FAILED';
  params: Record<string, string>;
  tags: Record<string, string>;
  metrics: Record<string, { value: number; step: number; timestamp: number }[]>;
  artifacts: Record<string, Uint8Array>;
}

/** Writes runs through our tracker and records exactly what was logged. */
async function writeStore(root: string): Promise<WrittenRun[]> {
  const written: WrittenRun[] = [];
  const main = await openFileStoreRun({ uri: root, experiment: 'interleave-compat', runName: 'hybrid-s', user: 'ci' });
  const params = { lr: '0.0003', 'model/d_model': '128', 'model/layers/0': 'attention', 'model/layers/1': 'mamba2' };
  await main.logParams(params);
  const loss = [2.75, 1.5, 0.875, 0.4375];
  const odd = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0];
  const metrics: WrittenRun['metrics'] = { loss: [], 'eval/odd': [] };
  for (const [index, value] of loss.entries()) {
    const step = index * 50;
    const timestamp = 1_750_000_000_000 + index * 1000;
    await main.logMetrics({ loss: value, 'eval/odd': odd[index]! }, step, timestamp);
    metrics.loss?.push({ value, step, timestamp });
    metrics['eval/odd']?.push({ value: odd[index]!, step, timestamp });
  }
  await main.setTags({ 'interleave.backend': 'tfjs-node' });
  const artifacts = {
    'config/resolved.yaml': new TextEncoder().encode('model:\n  d_model: 128\n'),
    'checkpoint/weights.safetensors': new Uint8Array([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]),
  };
  for (const [path, data] of Object.entries(artifacts)) await main.logArtifact(path, data);
  await main.end('FINISHED');
  written.push({
    runId: main.runId,
    runName: 'hybrid-s',
    status: 'FINISHED',
    params,
    tags: {
      'mlflow.runName': 'hybrid-s',
      'mlflow.user': 'ci',
      'mlflow.source.type': 'LOCAL',
      'interleave.backend': 'tfjs-node',
    },
    metrics,
    artifacts,
  });

  const failed = await openFileStoreRun({
    uri: root,
    experiment: 'interleave-compat',
    runName: 'diverged',
    user: 'ci',
  });
  await failed.logMetrics({ loss: 1e30 }, 3, 1_750_000_100_000);
  await failed.end('FAILED');
  written.push({
    runId: failed.runId,
    runName: 'diverged',
    status: 'FAILED',
    params: {},
    tags: { 'mlflow.runName': 'diverged', 'mlflow.user': 'ci', 'mlflow.source.type': 'LOCAL' },
    metrics: { loss: [{ value: 1e30, step: 3, timestamp: 1_750_000_100_000 }] },
    artifacts: {},
  });

  // Names that PyYAML (YAML 1.1) would read as booleans unless quoted.
  const yaml11 = await openFileStoreRun({ uri: root, experiment: 'yes', runName: 'on', user: 'ci' });
  await yaml11.end('FINISHED');
  return written;
}

/** Reads the store at `trackingUri` with the real MlflowClient (see read_with_mlflow.py). */
async function readWithMlflow(trackingUri: string, label: string) {
  const output = join(workDir, `${label}.json`);
  const result = await runCommand(
    venv.python,
    [READER_SCRIPT, trackingUri, join(workDir, `${label}-downloads`), output, 'interleave-compat', 'yes'],
    { env: { ...process.env, MLFLOW_ALLOW_FILE_STORE: 'true' } },
  );
  if (result.code !== 0) throw new Error(`MLflow could not read ${trackingUri}:\n${result.stderr.slice(-4000)}`);
  return JSON.parse(await readFile(output, 'utf8'));
}

/** The JSON that read_with_mlflow.py should print for `runs`, given how a store keeps floats. */
function expectedRuns(
  runs: WrittenRun[],
  storedTimes: Map<string, { start: number; end: number | null }>,
  sqlite: boolean,
) {
  const encode = (value: number): number | string => {
    if (Number.isNaN(value)) return 'nan';
    // The SQL store has no infinities (clamped to ±max double) and no negative zero.
    if (!Number.isFinite(value)) return sqlite ? Math.sign(value) * MAX_DOUBLE : value > 0 ? 'inf' : '-inf';
    return sqlite && Object.is(value, -0) ? 0 : value;
  };
  return runs.map((run) => ({
    info: {
      run_id: run.runId,
      run_name: run.runName,
      status: run.status,
      start_time: storedTimes.get(run.runId)?.start,
      end_time: storedTimes.get(run.runId)?.end,
      user_id: 'ci',
      lifecycle_stage: 'active',
      experiment_id: expect.stringMatching(/^[1-9][0-9]{17}$/),
      artifact_uri: expect.stringMatching(new RegExp(`/${run.runId}/artifacts$`)),
    },
    params: run.params,
    tags: run.tags,
    metrics: Object.fromEntries(
      Object.entries(run.metrics).map(([key, points]) => [
        key,
        points.map((point) => ({ ...point, value: encode(point.value) })),
      ]),
    ),
    // MLflow's latest value is the one at the highest step.
    latest_metrics: Object.fromEntries(
      Object.entries(run.metrics).map(([key, points]) => [key, encode(points.at(-1)!.value)]),
    ),
    artifacts: Object.entries(run.artifacts)
      .map(([path, data]) => ({
        path,
        file_size: data.byteLength,
        content_base64: Buffer.from(data).toString('base64'),
      }))
      .sort((a, b) => (a.path < b.path ? -1 : 1)),
  }));
}

describe('the real MLflow reads what the file store writer wrote', () => {
  it('MlflowClient reads every run, param, metric history, tag and artifact; migrate-filestore imports the store', async () => {
    const root = join(workDir, 'mlruns');
    const written = await writeStore(root);
    const storedTimes = new Map(
      (await findRuns(root, 'interleave-compat')).map((run) => [run.runId, { start: run.startTime, end: run.endTime }]),
    );
    for (const times of storedTimes.values()) {
      expect(times.start).toBeGreaterThan(1_700_000_000_000);
      expect(times.end).toBeGreaterThanOrEqual(times.start);
    }

    const fromFiles = await readWithMlflow(pathToFileURL(root).href, 'file-store');
    expect(fromFiles.mlflow_version).toBe(MLFLOW_VERSION);
    expect(fromFiles.experiment_names).toEqual(['Default', 'interleave-compat', 'yes']);
    const compat = fromFiles.experiments['interleave-compat'];
    expect(compat.name).toBe('interleave-compat');
    expect(compat.lifecycle_stage).toBe('active');
    expect(compat.artifact_location).toBe(pathToFileURL(join(root, compat.experiment_id)).href);
    expect(compat.runs).toEqual(expectedRuns(written, storedTimes, false));
    expect(compat.runs[0].info.artifact_uri).toBe(
      pathToFileURL(join(root, compat.experiment_id, written[0]!.runId, 'artifacts')).href,
    );
    expect(fromFiles.experiments.yes.runs.map((run: { info: { run_name: unknown } }) => run.info.run_name)).toEqual([
      'on',
    ]);

    const database = join(workDir, 'mlflow.db');
    const migration = await runCommand(
      venv.bin('mlflow'),
      ['migrate-filestore', '--source', root, '--target', `sqlite:///${database}`, '--no-progress'],
      { env: { ...process.env, MLFLOW_ALLOW_FILE_STORE: 'true' } },
    );
    expect(migration.code, `mlflow migrate-filestore failed:\n${migration.stdout}\n${migration.stderr}`).toBe(0);
    expect(migration.stdout).toMatch(/runs\s+3\s+3/);

    const fromSqlite = await readWithMlflow(`sqlite:///${database}`, 'sqlite');
    expect(fromSqlite.experiment_names).toEqual(['Default', 'interleave-compat', 'yes']);
    const migrated = fromSqlite.experiments['interleave-compat'];
    expect(migrated.experiment_id).toBe(compat.experiment_id);
    expect(migrated.runs).toEqual(expectedRuns(written, storedTimes, true));
    expect(fromSqlite.experiments.yes.runs[0].info.run_name).toBe('on');
  }, 300_000);
});
