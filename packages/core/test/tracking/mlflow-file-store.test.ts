import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { InterleaveError } from '../../src/errors.js';
import { resolveFileStoreRoot } from '../../src/tracking/file-store-format.js';
import {
  FileTrackingStore,
  findRuns,
  listExperiments,
  openFileStoreRun,
  openStore,
  openTracker,
  RestTrackingStore,
  readMetricHistory,
  type Tracker,
} from '../../src/tracking/index.js';
import { runCommand } from '../support/python-venv.js';

let workDir: string;
let root: string;

beforeEach(async () => {
  workDir = await mkdtemp(join(tmpdir(), 'interleave-mlflow-'));
  root = join(workDir, 'mlruns');
});

afterEach(async () => {
  await rm(workDir, { recursive: true, force: true });
});

/** Every file and folder under `directory`, as sorted `/`-separated paths (folders end in `/`). */
async function listTree(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { recursive: true, withFileTypes: true });
  return entries
    .map((entry) => {
      const path = join(entry.parentPath, entry.name).slice(directory.length + 1);
      return entry.isDirectory() ? `${path}/` : path;
    })
    .sort();
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );
const readText = (...parts: string[]) => readFile(join(...parts), 'utf8');
const readYaml = async (...parts: string[]) => parse(await readText(...parts), { version: '1.1' });

describe('MLflow file store writer', () => {
  it('writes the exact file store layout of docs/design.md#mlflow-file-store', async () => {
    const before = Date.now();
    const run = await openFileStoreRun({
      uri: pathToFileURL(root).href,
      experiment: 'layout-check',
      runName: 'hybrid-small',
      user: 'alice',
    });
    const afterOpen = Date.now();
    const experimentDir = join(root, run.experimentId);
    const runDir = join(experimentDir, run.runId);

    expect(run.runId).toMatch(/^[0-9a-f]{32}$/);
    expect(run.experimentId).toMatch(/^[1-9][0-9]{17}$/);
    expect(run.artifactLocation).toBe(join(runDir, 'artifacts'));

    // While running: status 1, end_time null.
    const running = await readYaml(runDir, 'meta.yaml');
    expect(running.status).toBe(1);
    expect(running.end_time).toBeNull();
    expect(await readText(runDir, 'meta.yaml')).toContain('end_time: null\n');

    await run.logParams({ lr: 0.001, 'model/d_model': 64, 'model/mixer/kind': 'mamba2', use_bias: true });
    await run.logMetrics({ loss: 2.5, 'train/tokens_per_s': 1200 }, 0, 1_700_000_000_000);
    await run.logMetrics({ loss: 1.25 }, 10, 1_700_000_000_500);
    await run.logMetrics({ loss: 0.5, 'train/tokens_per_s': 1300.75 }, 20, 1_700_000_001_000);
    await run.setTags({ 'interleave.config': 'configs/mqar-hybrid.yaml', 'interleave.seed': '7' });
    await run.logArtifact('config/resolved.yaml', 'model:\n  d_model: 64\n');
    await run.logArtifact('weights.bin', new Uint8Array([0, 1, 2, 255]));
    await run.end('FINISHED');
    const afterEnd = Date.now();

    expect(await listTree(root)).toEqual(
      [
        '.trash/',
        '0/',
        '0/meta.yaml',
        `${run.experimentId}/`,
        `${run.experimentId}/meta.yaml`,
        `${run.experimentId}/${run.runId}/`,
        `${run.experimentId}/${run.runId}/artifacts/`,
        `${run.experimentId}/${run.runId}/artifacts/config/`,
        `${run.experimentId}/${run.runId}/artifacts/config/resolved.yaml`,
        `${run.experimentId}/${run.runId}/artifacts/weights.bin`,
        `${run.experimentId}/${run.runId}/meta.yaml`,
        `${run.experimentId}/${run.runId}/metrics/`,
        `${run.experimentId}/${run.runId}/metrics/loss`,
        `${run.experimentId}/${run.runId}/metrics/train/`,
        `${run.experimentId}/${run.runId}/metrics/train/tokens_per_s`,
        `${run.experimentId}/${run.runId}/params/`,
        `${run.experimentId}/${run.runId}/params/lr`,
        `${run.experimentId}/${run.runId}/params/model/`,
        `${run.experimentId}/${run.runId}/params/model/d_model`,
        `${run.experimentId}/${run.runId}/params/model/mixer/`,
        `${run.experimentId}/${run.runId}/params/model/mixer/kind`,
        `${run.experimentId}/${run.runId}/params/use_bias`,
        `${run.experimentId}/${run.runId}/tags/`,
        `${run.experimentId}/${run.runId}/tags/interleave.config`,
        `${run.experimentId}/${run.runId}/tags/interleave.seed`,
        `${run.experimentId}/${run.runId}/tags/mlflow.runName`,
        `${run.experimentId}/${run.runId}/tags/mlflow.source.type`,
        `${run.experimentId}/${run.runId}/tags/mlflow.user`,
      ].sort(),
    );

    // The store's Default experiment, as MLflow creates it for a new root.
    const defaultMeta = await readYaml(root, '0', 'meta.yaml');
    expect(defaultMeta).toEqual({
      artifact_location: pathToFileURL(join(root, '0')).href,
      creation_time: expect.any(Number),
      experiment_id: '0',
      last_update_time: defaultMeta.creation_time,
      lifecycle_stage: 'active',
      name: 'Default',
    });

    const experimentText = await readText(experimentDir, 'meta.yaml');
    expect(experimentText).toContain(`experiment_id: '${run.experimentId}'\n`);
    const experimentMeta = parse(experimentText, { version: '1.1' });
    expect(experimentMeta).toEqual({
      artifact_location: pathToFileURL(experimentDir).href,
      creation_time: experimentMeta.creation_time,
      experiment_id: run.experimentId,
      last_update_time: experimentMeta.creation_time,
      lifecycle_stage: 'active',
      name: 'layout-check',
    });
    expect(experimentMeta.creation_time).toBeGreaterThanOrEqual(before);
    expect(experimentMeta.creation_time).toBeLessThanOrEqual(afterOpen);

    const runText = await readText(runDir, 'meta.yaml');
    const runMeta = parse(runText, { version: '1.1' });
    expect(Object.keys(runMeta)).toEqual(Object.keys(runMeta).sort());
    expect(runMeta).toEqual({
      artifact_uri: `file://${runDir}/artifacts`,
      end_time: runMeta.end_time,
      entry_point_name: '',
      experiment_id: run.experimentId,
      lifecycle_stage: 'active',
      run_id: run.runId,
      run_name: 'hybrid-small',
      run_uuid: run.runId,
      source_name: '',
      source_type: 4,
      source_version: '',
      start_time: runMeta.start_time,
      status: 3,
      tags: [],
      user_id: 'alice',
    });
    expect(runText).toContain(`experiment_id: '${run.experimentId}'\n`);
    expect(runText).toContain("entry_point_name: ''\n");
    expect(runText).toContain('tags: []\n');
    expect(Number.isInteger(runMeta.start_time)).toBe(true);
    expect(Number.isInteger(runMeta.end_time)).toBe(true);
    expect(runMeta.start_time).toBeGreaterThanOrEqual(before);
    expect(runMeta.start_time).toBeLessThanOrEqual(afterOpen);
    expect(runMeta.end_time).toBeGreaterThanOrEqual(runMeta.start_time);
    expect(runMeta.end_time).toBeLessThanOrEqual(afterEnd);

    expect(await readText(runDir, 'metrics', 'loss')).toBe(
      '1700000000000 2.5 0\n1700000000500 1.25 10\n1700000001000 0.5 20\n',
    );
    expect(await readText(runDir, 'metrics', 'train', 'tokens_per_s')).toBe(
      '1700000000000 1200 0\n1700000001000 1300.75 20\n',
    );
    expect(await readText(runDir, 'params', 'lr')).toBe('0.001');
    expect(await readText(runDir, 'params', 'model', 'd_model')).toBe('64');
    expect(await readText(runDir, 'params', 'model', 'mixer', 'kind')).toBe('mamba2');
    expect(await readText(runDir, 'params', 'use_bias')).toBe('true');
    expect(await readText(runDir, 'tags', 'mlflow.runName')).toBe('hybrid-small');
    expect(await readText(runDir, 'tags', 'mlflow.user')).toBe('alice');
    expect(await readText(runDir, 'tags', 'mlflow.source.type')).toBe('LOCAL');
    expect(await readText(runDir, 'tags', 'interleave.config')).toBe('configs/mqar-hybrid.yaml');
    expect(await readText(runDir, 'artifacts', 'config', 'resolved.yaml')).toBe('model:\n  d_model: 64\n');
    expect([...(await readFile(join(runDir, 'artifacts', 'weights.bin')))]).toEqual([0, 1, 2, 255]);
  });

  it('writes FAILED and KILLED as status 4 and 5, reusing the experiment by name', async () => {
    const failed = await openFileStoreRun({ uri: root, experiment: 'statuses', runName: 'a' });
    const killed = await openFileStoreRun({ uri: root, experiment: 'statuses', runName: 'b' });
    expect(killed.experimentId).toBe(failed.experimentId);
    await failed.end('FAILED');
    await killed.end('KILLED');
    const statusOf = async (run: Tracker) => (await readYaml(root, run.experimentId, run.runId, 'meta.yaml')).status;
    expect(await statusOf(failed)).toBe(4);
    expect(await statusOf(killed)).toBe(5);
    expect((await listExperiments(root)).map((experiment) => experiment.name).sort()).toEqual(['Default', 'statuses']);
  });

  it('finds an experiment that MLflow created (random id, legacy numeric id field)', async () => {
    await openFileStoreRun({ uri: root, experiment: 'warm-up', runName: 'x' });
    const legacyDir = join(root, '42');
    const elsewhere = join(workDir, 'artifacts-elsewhere');
    await mkdir(legacyDir);
    await writeFile(
      join(legacyDir, 'meta.yaml'),
      `artifact_location: ${elsewhere}\nexperiment_id: 42\nlifecycle_stage: active\nname: legacy\n`,
    );
    const run = await openFileStoreRun({ uri: root, experiment: 'legacy', runName: 'y' });
    expect(run.experimentId).toBe('42');
    // MLflow puts a run's artifacts under its experiment's artifact_location, wherever that is.
    expect(run.artifactLocation).toBe(join(elsewhere, run.runId, 'artifacts'));
    await run.logArtifact('note.txt', 'hi');
    expect(await readText(elsewhere, run.runId, 'artifacts', 'note.txt')).toBe('hi');
  });

  it('keeps params write-once: the same value again is fine, a different value is an error', async () => {
    const run = await openFileStoreRun({ uri: root, experiment: 'params', runName: 'once' });
    await run.logParams({ 'optim/lr': 0.01 });
    await run.logParams({ 'optim/lr': '0.01' });
    await expect(run.logParams({ 'optim/lr': 0.02 })).rejects.toThrow(InterleaveError);
    await expect(run.logParams({ 'optim/lr': 0.02 })).rejects.toThrow(
      /param 'optim\/lr' was already logged as '0\.01'.*write-once.*'0\.02'/,
    );
    expect(await readText(root, run.experimentId, run.runId, 'params', 'optim', 'lr')).toBe('0.01');
  });

  it('rejects keys MLflow would reject, before writing anything', async () => {
    const run = await openFileStoreRun({ uri: root, experiment: 'keys', runName: 'bad' });
    const runDir = join(root, run.experimentId, run.runId);
    const before = await listTree(runDir);
    const badKeys = [
      '',
      '../escape',
      '/absolute',
      'a//b',
      'a/',
      './a',
      'a/../b',
      '..hidden',
      'semi;colon',
      'x'.repeat(251),
    ];
    for (const key of badKeys) {
      await expect(run.logParams({ ok: 1, [key]: 1 }), `param ${key}`).rejects.toThrow(InterleaveError);
      await expect(run.logMetrics({ ok: 1, [key]: 1 }, 0), `metric ${key}`).rejects.toThrow(InterleaveError);
      await expect(run.setTags({ ok: 'x', [key]: 'x' }), `tag ${key}`).rejects.toThrow(InterleaveError);
    }
    await expect(run.logParams({ 'bad*key': 1 })).rejects.toThrow(/invalid MLflow param key "bad\*key"/);
    for (const path of ['../outside.txt', '/etc/x', 'a/../../b', 'a\\b', '']) {
      await expect(run.logArtifact(path, 'x'), `artifact ${path}`).rejects.toThrow(InterleaveError);
    }
    await expect(run.logMetrics({ loss: 1 }, 1.5)).rejects.toThrow(/step must be an integer/);
    await expect(run.logParams({ long: 'v'.repeat(6001) })).rejects.toThrow(/limit is 6000/);
    expect(await listTree(runDir)).toEqual(before);
    // Keys MLflow accepts: letters of any script, digits, spaces, dots, dashes, nested folders.
    await run.logParams({ 'Größe des Modells': 1, 'a.b-c_d/e f': 2 });
  });

  it('writes metric values that Python float() parses, including NaN and ±Infinity', async () => {
    const run = await openFileStoreRun({ uri: root, experiment: 'values', runName: 'floats' });
    const values = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 1e21, 5e-324, 0.1, -3];
    for (const [step, value] of values.entries()) await run.logMetrics({ v: value }, step, 1000 + step);
    expect(await readText(root, run.experimentId, run.runId, 'metrics', 'v')).toBe(
      [
        '1000 nan 0',
        '1001 inf 1',
        '1002 -inf 2',
        '1003 -0.0 3',
        '1004 1e+21 4',
        '1005 5e-324 5',
        '1006 0.1 6',
        '1007 -3 7',
        '',
      ].join('\n'),
    );
    const history = await readMetricHistory(root, run.runId, 'v');
    expect(history.map((point) => point.value)).toEqual(values);
    expect(history.map((point) => point.step)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it('writes a step of several metrics, nested keys included, every line in step order', async () => {
    const run = await openFileStoreRun({ uri: root, experiment: 'steps', runName: 'many' });
    const keys = ['train/loss', 'train/accuracy', 'train/lr', 'compute/flops', 'eval/mqar/L64_K4/accuracy', 'top'];
    for (let step = 1; step <= 40; step++) {
      await run.logMetrics(Object.fromEntries(keys.map((key, k) => [key, step * 10 + k])), step, 5000 + step);
    }
    for (const [k, key] of keys.entries()) {
      const history = await readMetricHistory(root, run.runId, key);
      expect(
        history.map((point) => point.step),
        key,
      ).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
      expect(
        history.map((point) => point.value),
        key,
      ).toEqual(Array.from({ length: 40 }, (_, i) => (i + 1) * 10 + k));
    }
    // A key cannot be both a value and a folder of '/'-separated keys, in one call or across calls.
    await expect(run.logMetrics({ 'train/loss/extra': 1 }, 41)).rejects.toThrow(/clashes with another key/);
    await expect(run.logMetrics({ fresh: 1, 'fresh/inner': 2 }, 41)).rejects.toThrow(/clashes with another key/);
  });

  it('writes metrics logged without waiting in step order, and has them all on disk when the run ends', async () => {
    const run = await openFileStoreRun({ uri: root, experiment: 'unawaited', runName: 'fast' });
    const writes: Promise<void>[] = [];
    for (let step = 1; step <= 200; step++)
      writes.push(run.logMetrics({ 'train/loss': 1 / step, lr: step }, step, 9000 + step));
    // Each call resolves once its own lines are written, whichever batch they went in.
    await writes[0];
    expect(run.flush).toBeTypeOf('function');
    await run.flush?.();
    expect((await readMetricHistory(root, run.runId, 'lr')).length).toBe(200);
    const first = await readMetricHistory(root, run.runId, 'train/loss');
    expect(first.length).toBeGreaterThanOrEqual(1);
    expect(first[0]).toMatchObject({ step: 1, value: 1 });
    await run.end('FINISHED');
    for (const key of ['train/loss', 'lr']) {
      const history = await readMetricHistory(root, run.runId, key);
      expect(
        history.map((point) => point.step),
        key,
      ).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    }
    expect((await readMetricHistory(root, run.runId, 'lr')).map((point) => point.timestamp)).toEqual(
      Array.from({ length: 200 }, (_, i) => 9001 + i),
    );
    await Promise.all(writes);
  });

  it('fails the calls whose lines a failed write held, and writes later lines', async () => {
    const run = await openFileStoreRun({ uri: root, experiment: 'clash', runName: 'later' });
    await run.logMetrics({ taken: 1 }, 1);
    const clashing = run.logMetrics({ 'taken/inner': 2 }, 2);
    await expect(clashing).rejects.toThrow(/clashes with another key/);
    await run.logMetrics({ taken: 3 }, 3);
    expect((await readMetricHistory(root, run.runId, 'taken')).map((point) => point.value)).toEqual([1, 3]);
  });

  it('quotes names that YAML 1.1 (PyYAML, which MLflow uses) would not read as strings', async () => {
    const run = await openFileStoreRun({ uri: root, experiment: 'yes', runName: 'on' });
    expect(await readText(root, run.experimentId, 'meta.yaml')).toContain("name: 'yes'\n");
    expect(await readText(root, run.experimentId, run.runId, 'meta.yaml')).toContain("run_name: 'on'\n");
  });

  it('keeps meta.yaml run_name in step with the mlflow.runName tag', async () => {
    const run = await openFileStoreRun({ uri: root, experiment: 'rename', runName: 'first' });
    await run.setTags({ 'mlflow.runName': 'second' });
    expect((await readYaml(root, run.experimentId, run.runId, 'meta.yaml')).run_name).toBe('second');
    expect(await readText(root, run.experimentId, run.runId, 'tags', 'mlflow.runName')).toBe('second');
  });

  it('refuses to log to or end a run that has ended', async () => {
    const run = await openFileStoreRun({ uri: root, experiment: 'ended', runName: 'done' });
    await run.end('FINISHED');
    await expect(run.logMetrics({ loss: 1 }, 0)).rejects.toThrow(/already ended/);
    await expect(run.end('FAILED')).rejects.toThrow(/already ended/);
  });

  it('creates one experiment when many runs race to create it', async () => {
    const runs = await Promise.all(
      Array.from({ length: 8 }, (_, index) =>
        openFileStoreRun({ uri: root, experiment: 'race', runName: `r${index}` }),
      ),
    );
    expect(new Set(runs.map((run) => run.experimentId)).size).toBe(1);
    const named = (await listExperiments(root)).filter((experiment) => experiment.name === 'race');
    expect(named).toHaveLength(1);
    expect(await findRuns(root, 'race')).toHaveLength(8);
  });

  it('creates one experiment when separate processes race to create it', async () => {
    const tsx = fileURLToPath(new URL('../../../../node_modules/.bin/tsx', import.meta.url));
    const trackingIndex = new URL('../../src/tracking/index.ts', import.meta.url).href;
    const child = join(workDir, 'open-run.mts');
    const go = join(workDir, 'go');
    // Process start-up times differ by far more than the race window, so the children load
    // everything, report ready, and then spin until the parent lets them all go at once.
    await writeFile(
      child,
      [
        "import { existsSync, writeFileSync } from 'node:fs';",
        `import { openFileStoreRun } from '${trackingIndex}';`,
        'const [root, name, ready, go] = process.argv.slice(2);',
        "writeFileSync(ready, '');",
        // The deadline keeps a child from spinning forever if the test dies first.
        'const deadline = Date.now() + 120_000;',
        // Sleep 1 ms between looks rather than spin: spinning children starve the ones still
        // starting up on a small machine, and 1 ms is still far inside the race window.
        'const pause = new Int32Array(new SharedArrayBuffer(4));',
        'while (!existsSync(go) && Date.now() < deadline) Atomics.wait(pause, 0, 0, 1);',
        "const run = await openFileStoreRun({ uri: root, experiment: 'race', runName: name });",
        'console.log(run.experimentId);',
      ].join('\n'),
    );
    const count = 4;
    const ready = Array.from({ length: count }, (_, index) => join(workDir, `ready-${index}`));
    let exitedEarly = 0;
    const children = ready.map((readyFile, index) =>
      runCommand(tsx, [child, root, `process-${index}`, readyFile, go]).finally(() => {
        exitedEarly++;
      }),
    );
    // Bounded, so a child that crashes before it is ready fails the test with its stderr.
    for (const deadline = Date.now() + 120_000; Date.now() < deadline && exitedEarly === 0; ) {
      if ((await Promise.all(ready.map(exists))).every(Boolean)) break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await writeFile(go, '');
    const results = await Promise.all(children);
    for (const result of results) expect(result.code, result.stderr).toBe(0);
    expect(new Set(results.map((result) => result.stdout.trim())).size).toBe(1);
    expect((await listExperiments(root)).filter((experiment) => experiment.name === 'race')).toHaveLength(1);
    expect(await findRuns(root, 'race')).toHaveLength(count);
  }, 240_000);

  it('refuses an experiment whose name is deleted (in .trash)', async () => {
    const run = await openFileStoreRun({ uri: root, experiment: 'gone', runName: 'x' });
    const trashed = join(root, '.trash', run.experimentId);
    await rename(join(root, run.experimentId), trashed);
    const metaPath = join(trashed, 'meta.yaml');
    await writeFile(
      metaPath,
      (await readFile(metaPath, 'utf8')).replace('lifecycle_stage: active', 'lifecycle_stage: deleted'),
    );
    await expect(openFileStoreRun({ uri: root, experiment: 'gone', runName: 'y' })).rejects.toThrow(/is deleted/);
  });
});

describe('tracking URIs and user errors', () => {
  it('resolves ./mlruns, relative and absolute paths and file:/// URIs to the store root', () => {
    expect(resolveFileStoreRoot('./mlruns')).toBe(resolve('mlruns'));
    expect(resolveFileStoreRoot('runs/mlflow')).toBe(resolve('runs/mlflow'));
    expect(resolveFileStoreRoot('/data/mlruns')).toBe('/data/mlruns');
    expect(resolveFileStoreRoot('file:///data/ml%20runs')).toBe('/data/ml runs');
    expect(() => resolveFileStoreRoot('file://somehost/data')).toThrow(InterleaveError);
    expect(() => resolveFileStoreRoot('')).toThrow(InterleaveError);
  });

  it('turns an unwritable path into a one-line InterleaveError', async () => {
    const blocker = join(workDir, 'a-file');
    await writeFile(blocker, 'not a folder');
    await expect(openTracker({ uri: blocker, experiment: 'e', runName: 'r' })).rejects.toThrow(
      /exists and is not a folder/,
    );
    const error = await openTracker({ uri: join(blocker, 'mlruns'), experiment: 'e', runName: 'r' }).catch((e) => e);
    expect(error).toBeInstanceOf(InterleaveError);
    expect(error.message).not.toContain('\n');
  });

  it('rejects URI schemes that are neither a file store nor a tracking server', async () => {
    await expect(openTracker({ uri: 's3://bucket/mlruns', experiment: 'e', runName: 'r' })).rejects.toThrow(
      /unsupported MLflow tracking URI/,
    );
    expect(openStore('http://localhost:5000')).toBeInstanceOf(RestTrackingStore);
    expect(openStore('./mlruns')).toBeInstanceOf(FileTrackingStore);
  });

  it('opens the file store through openTracker for paths', async () => {
    const run = await openTracker({ uri: root, experiment: 'via-open-tracker', runName: 'r' });
    expect((await stat(join(root, run.experimentId, run.runId, 'meta.yaml'))).isFile()).toBe(true);
  });
});

describe('file store reader', () => {
  it('lists experiments, finds runs with status/params/tags and reads metric history', async () => {
    const first = await openFileStoreRun({ uri: root, experiment: 'sweep', runName: 'lr-1', user: 'bob' });
    await first.logParams({ lr: 0.1 });
    await first.logMetrics({ loss: 3, 'eval/acc': 0.25 }, 1, 5000);
    await first.logMetrics({ loss: 2 }, 2, 6000);
    await first.end('FINISHED');
    const second = await openFileStoreRun({ uri: root, experiment: 'sweep', runName: 'lr-2', user: 'bob' });
    await second.logParams({ lr: 0.2 });

    expect((await listExperiments(root)).map((experiment) => experiment.name).sort()).toEqual(['Default', 'sweep']);
    const runs = await findRuns(root, 'sweep');
    expect(runs.map((run) => [run.runName, run.status, run.params.lr])).toEqual([
      ['lr-1', 'FINISHED', '0.1'],
      ['lr-2', 'RUNNING', '0.2'],
    ]);
    expect(runs[0]?.tags).toEqual({ 'mlflow.runName': 'lr-1', 'mlflow.user': 'bob', 'mlflow.source.type': 'LOCAL' });
    expect(runs[0]?.metricKeys).toEqual(['eval/acc', 'loss']);
    expect(runs[1]?.endTime).toBeNull();
    expect(await readMetricHistory(root, first.runId, 'loss')).toEqual([
      { timestamp: 5000, value: 3, step: 1 },
      { timestamp: 6000, value: 2, step: 2 },
    ]);
    expect(await readMetricHistory(root, first.runId, 'never-logged')).toEqual([]);
    expect(await findRuns(root, 'no-such-experiment')).toEqual([]);
    expect(await listExperiments(join(workDir, 'absent'))).toEqual([]);
    await expect(readMetricHistory(root, 'f'.repeat(32), 'loss')).rejects.toThrow(/not found/);
  });
});
