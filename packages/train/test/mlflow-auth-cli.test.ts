import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlflowServer, SERVER_TIMEOUT_MS } from '../../core/test/support/mlflow-server.js';

const CLI = resolve(import.meta.dirname, '../bin/interleave.mjs');
const PASSWORD = 'Interleave-admin-password-2026';
const WRONG = 'wrong-password-5b7e91';

const CONFIG = `name: auth-check
seed: 1
backend: wasm
model:
  vocab_size: 32
  d_model: 8
  layers:
    - { block: mamba, d_state: 4 }
task: { name: mqar, seq_len: 16, num_kv_pairs: 2, test_examples: 8 }
train:
  steps: 2
  batch_size: 4
  optimizer: { name: adamw, lr: 1.0e-3 }
tracking: { uri: ./mlruns, experiment: secured }
`;

let server: MlflowServer;
let dir: string;

beforeAll(async () => {
  server = await MlflowServer.launch({ basicAuth: { admin: 'admin', password: PASSWORD } });
  dir = mkdtempSync(join(tmpdir(), 'interleave-auth-cli-'));
  writeFileSync(join(dir, 'config.yaml'), CONFIG);
}, SERVER_TIMEOUT_MS);

afterAll(async () => {
  await server?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('interleave train against an MLflow server with basic auth', () => {
  it('fails at the start with one clear line, and no secret, when the password is wrong', () => {
    const result = spawnSync(process.execPath, [CLI, 'train', 'config.yaml', '--set', `tracking.uri=${server.uri}`], {
      cwd: dir,
      encoding: 'utf8',
      env: {
        ...process.env,
        INTERLEAVE_BACKEND: 'wasm',
        MLFLOW_TRACKING_USERNAME: 'admin',
        MLFLOW_TRACKING_PASSWORD: WRONG,
      },
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toBe(
      `interleave: MLflow server ${server.uri} rejected the credentials (401 Unauthorized): check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD\n`,
    );
    const output = result.stdout + result.stderr;
    for (const secret of [WRONG, PASSWORD, Buffer.from(`admin:${WRONG}`).toString('base64')]) {
      expect(output).not.toContain(secret);
    }
    // Nothing trained: the run never started.
    expect(result.stdout).not.toContain('final test accuracy');
  });
});
