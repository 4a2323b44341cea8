import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  FileTrackingStore,
  listArtifactFiles,
  RestTrackingStore,
  type RunRecord,
  searchAllRuns,
} from '@interleave/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlflowServer, SERVER_TIMEOUT_MS } from '../../core/test/support/mlflow-server.js';
import { trainFromConfig } from '../src/run/train-run.js';

const CLI = resolve(import.meta.dirname, '../bin/interleave.mjs');

const CONFIG = `name: server-check
seed: 7
backend: wasm
model:
  vocab_size: 32
  d_model: 16
  layers:
    - { block: mamba, d_state: 4 }
    - { block: swa, window: 8, heads: 2, mlp: { expansion: 2 } }
task: { name: mqar, seq_len: 16, num_kv_pairs: 2, test_examples: 8 }
train:
  steps: 6
  batch_size: 4
  checkpoint_every: 2
  optimizer: { name: adamw, lr: 3.0e-3 }
  schedule: { warmup_steps: 2 }
tracking: { uri: ./mlruns, experiment: on-server }
`;

const quiet = { write: () => true, isTTY: false };

/** One real MLflow server for the file; every test writes its own experiment. */
let server: MlflowServer;
let dir: string;
let configFile: string;

beforeAll(async () => {
  server = await MlflowServer.launch();
  dir = mkdtempSync(join(tmpdir(), 'interleave-mlflow-server-'));
  configFile = join(dir, 'config.yaml');
  writeFileSync(configFile, CONFIG);
  // Runs on a server keep their write-ahead logs here, not in the repository.
  process.env.INTERLEAVE_MLFLOW_WAL_DIR = join(dir, 'wal');
}, SERVER_TIMEOUT_MS);

afterAll(async () => {
  delete process.env.INTERLEAVE_MLFLOW_WAL_DIR;
  await server?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function interleave(args: string[]) {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, INTERLEAVE_BACKEND: 'wasm' },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Stops the loop after `steps` updates, as Ctrl-C would. */
function stopAfter(steps: number) {
  let checks = 0;
  return {
    get stopped() {
      return checks++ >= steps;
    },
  };
}

async function historySteps(store: RestTrackingStore, runId: string, key: string): Promise<number[]> {
  return (await store.getMetricHistory(runId, key)).map((point) => point.step).sort((a, b) => a - b);
}

describe('training against a real MLflow tracking server', () => {
  it(
    'logs params, every step and the checkpoint through the server, and resumes from the checkpoint it downloads',
    async () => {
      const overrides = [`tracking.uri=${server.uri}`, 'tracking.experiment=train-on-server'];
      const straight = await trainFromConfig({ configFile, overrides, output: quiet });
      const store = new RestTrackingStore(server.uri);
      const run = await store.getRun(straight.runId);
      expect(run.status).toBe('FINISHED');
      expect(run.params['model.d_model']).toBe('16');
      expect(run.tags['interleave.architecture']).toBe('mamba+swa');
      expect(await historySteps(store, run.runId, 'train/loss')).toEqual([1, 2, 3, 4, 5, 6]);
      expect((await listArtifactFiles(store, run.runId)).map((file) => file.path)).toEqual([
        'checkpoint/model.safetensors',
        'checkpoint/optimizer.safetensors',
        'checkpoint/trainer.json',
        'config.yaml',
      ]);

      const interrupted = await trainFromConfig({ configFile, overrides, output: quiet, stopSignal: stopAfter(3) });
      expect(interrupted.status).toBe('KILLED');
      const resumed = await trainFromConfig({
        configFile,
        overrides,
        output: quiet,
        resumeRunId: interrupted.runId,
      });
      expect(resumed.status).toBe('FINISHED');
      expect(resumed.losses).toEqual(straight.losses.slice(3));
      expect(await historySteps(store, interrupted.runId, 'train/loss')).toEqual([1, 2, 3, 4, 5, 6]);
      expect((await store.getRun(interrupted.runId)).status).toBe('FINISHED');
    },
    SERVER_TIMEOUT_MS,
  );

  it(
    '`interleave mlflow push` copies a file store made by training: same params, histories and artifacts, once',
    async () => {
      const local = join(dir, 'mlruns');
      const trained = await trainFromConfig({
        configFile,
        overrides: [`tracking.uri=${local}`, 'tracking.experiment=pushed'],
        output: quiet,
      });
      const pushed = interleave(['mlflow', 'push', local, '--to', server.uri]);
      expect(pushed.stderr).toBe('');
      expect(pushed.status).toBe(0);
      expect(pushed.stdout).toMatch(new RegExp(`pushed: run ${trained.runId} → [0-9a-f]{32} copied`));

      const source = new FileTrackingStore(local);
      const target = new RestTrackingStore(server.uri);
      const experiment = await target.getExperimentByName('pushed');
      const copies = await searchAllRuns(target, [experiment?.experimentId as string]);
      expect(copies).toHaveLength(1);
      const copy = copies[0] as RunRecord;
      const original = await source.getRun(trained.runId);
      expect(copy.params).toEqual(original.params);
      expect(copy.status).toBe('FINISHED');
      expect(copy.startTime).toBe(original.startTime);
      expect(copy.endTime).toBe(original.endTime);
      expect(copy.tags['interleave.origin.run_id']).toBe(trained.runId);
      for (const [key, value] of Object.entries(original.tags)) expect(copy.tags[key], key).toBe(value);
      expect(copy.metricKeys).toEqual(original.metricKeys);
      for (const key of original.metricKeys) {
        expect(await target.getMetricHistory(copy.runId, key), key).toEqual(
          await source.getMetricHistory(trained.runId, key),
        );
      }
      const files = await listArtifactFiles(source, trained.runId);
      expect((await listArtifactFiles(target, copy.runId)).map((file) => file.path)).toEqual(
        files.map((file) => file.path),
      );
      for (const file of files) {
        expect(await target.downloadArtifact(copy.runId, file.path), file.path).toEqual(
          await source.downloadArtifact(trained.runId, file.path),
        );
      }

      // Again: nothing new is sent.
      const again = interleave(['mlflow', 'push', local, '--to', server.uri]);
      expect(again.status).toBe(0);
      expect(again.stdout).toContain(`run ${trained.runId} → ${copy.runId} already there`);
      expect(await target.getMetricHistory(copy.runId, 'train/loss')).toHaveLength(6);

      // The copy's checkpoint is what `generate` loads by run id from the server.
      const args = ['--prompt-tokens', '1,2,3,4', '--max-new', '4'];
      const fromServer = interleave(['generate', copy.runId, '--uri', server.uri, ...args]);
      const fromFolder = interleave(['generate', join(local, original.experimentId, trained.runId), ...args]);
      expect(fromServer.stderr).toBe('');
      expect(fromServer.status).toBe(0);
      expect(fromServer.stdout).toBe(fromFolder.stdout);

      // `eval` by run id downloads the checkpoint and adds its metrics to the run on the server,
      // leaving its status and end time alone.
      const evaluated = interleave([
        'eval',
        copy.runId,
        '--uri',
        server.uri,
        '--task',
        'mqar_grid',
        '--set',
        'seq_len=[16]',
        '--set',
        'num_kv_pairs=[2]',
      ]);
      expect(evaluated.stderr).toBe('');
      expect(evaluated.status).toBe(0);
      expect(evaluated.stdout).toContain(`logged 3 metrics to run ${copy.runId}`);
      const afterEval = await target.getRun(copy.runId);
      expect(afterEval.status).toBe('FINISHED');
      expect(afterEval.endTime).toBe(original.endTime);
      expect(await target.getMetricHistory(copy.runId, 'eval/mqar/L16_K2/accuracy')).toHaveLength(1);

      // And `report` reads the experiment from the server.
      const report = interleave(['report', 'pushed', '--uri', server.uri, '--out', join(dir, 'report')]);
      expect(report.stderr).toBe('');
      expect(report.status).toBe(0);
      expect(readFileSync(join(dir, 'report', 'report.html'), 'utf8')).toContain(
        `<td>${(copy.runId).slice(0, 8)}</td>`,
      );
    },
    SERVER_TIMEOUT_MS,
  );
});
