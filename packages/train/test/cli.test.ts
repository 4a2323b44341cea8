import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { readSafetensorsFile } from '@interleave/core';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const CLI = resolve(import.meta.dirname, '../bin/interleave.mjs');

function interleave(args: string[], cwd: string) {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, INTERLEAVE_BACKEND: 'wasm' },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const TINY = `name: tiny-hybrid
seed: 3
model:
  vocab_size: 32
  d_model: 16
  layers:
    - repeat: 1
      pattern:
        - { block: mamba, d_state: 4 }
        - { block: swa, window: 8, heads: 2, mlp: { expansion: 2 } }
task: { name: mqar, seq_len: 16, num_kv_pairs: 2, test_examples: 16 }
train:
  steps: 4
  batch_size: 4
  optimizer: { name: adamw, lr: 1.0e-3 }
  eval_every: 2
  log_every: 1
tracking: { uri: ./mlruns, experiment: cli-test }
`;

function workspace(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'interleave-cli-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

/** One line on stderr that names the problem, and nothing that looks like a stack trace. */
function expectOneCleanLine(stderr: string, ...fragments: string[]) {
  const lines = stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  for (const fragment of fragments) expect(lines[0]).toContain(fragment);
  expect(stderr).not.toMatch(/^\s+at /m);
}

describe('interleave train: bad input', () => {
  it('names a missing config file', () => {
    const { status, stderr } = interleave(['train', 'nosuch.yaml'], workspace({}));
    expect(status).not.toBe(0);
    expectOneCleanLine(stderr, 'config file not found: nosuch.yaml');
  });

  it('names the file, key path and line of a typo', () => {
    const dir = workspace({ 'typo.yaml': TINY.replace('  batch_size: 4', '  batch_sise: 4') });
    const { status, stderr } = interleave(['train', 'typo.yaml'], dir);
    expect(status).not.toBe(0);
    expectOneCleanLine(stderr, 'typo.yaml:14:3', 'train.batch_sise', "unknown key 'batch_sise'", "'batch_size'");
  });

  it('names an unknown block and lists the registered ones', () => {
    const dir = workspace({ 'block.yaml': TINY.replace('block: mamba', 'block: mambo') });
    const { status, stderr } = interleave(['train', 'block.yaml'], dir);
    expect(status).not.toBe(0);
    expectOneCleanLine(stderr, 'block.yaml:9:20', 'model.layers[0].pattern[0].block', "unknown block 'mambo'", 'mamba');
  });

  it('checks a block parameter with the block schema, located in the file', () => {
    const dir = workspace({ 'window.yaml': TINY.replace('window: 8', 'window: -2') });
    const { status, stderr } = interleave(['train', 'window.yaml'], dir);
    expect(status).not.toBe(0);
    expectOneCleanLine(stderr, 'window.yaml:10:33', 'model.layers[0].pattern[1].window');
  });

  it('rejects a bad --set value before anything runs', () => {
    const dir = workspace({ 'tiny.yaml': TINY });
    const { status, stderr } = interleave(['train', 'tiny.yaml', '--set', 'train.steps=many'], dir);
    expect(status).not.toBe(0);
    expectOneCleanLine(stderr, '--set train.steps=many', 'train.steps', 'expected number');
    expect(readdirSync(dir)).toEqual(['tiny.yaml']);
  });

  it('refuses a backend that is not available instead of falling back', () => {
    // Whether tensorflow is set up differs from machine to machine (and webgpu starts on any
    // machine with Mesa), so the test switches tensorflow off itself: it cannot start, as where
    // libtensorflow is missing, and naming it must fail rather than fall back to another backend.
    const dir = workspace({ 'tiny.yaml': TINY });
    const env: NodeJS.ProcessEnv = { ...process.env, INTERLEAVE_DISABLE_BACKENDS: 'tensorflow' };
    delete env.INTERLEAVE_BACKEND;
    const direct = spawnSync(process.execPath, [CLI, 'train', 'tiny.yaml', '--set', 'backend=tensorflow'], {
      cwd: dir,
      encoding: 'utf8',
      env,
    });
    expect(direct.status).not.toBe(0);
    expectOneCleanLine(
      direct.stderr,
      "backend 'tensorflow'",
      'not available here: tensorflow: switched off by INTERLEAVE_DISABLE_BACKENDS=tensorflow',
    );
    expect(readdirSync(dir)).toEqual(['tiny.yaml']);
  });
});

describe('interleave train: a tiny run end to end', () => {
  it('trains, prints the test accuracy and leaves a complete MLflow run with its checkpoint', async () => {
    const dir = workspace({ 'tiny.yaml': TINY });
    const { status, stdout, stderr } = interleave(['train', 'tiny.yaml', '--set', 'train.checkpoint_every=2'], dir);
    expect(stderr).toBe('');
    expect(status).toBe(0);
    expect(stdout).toContain('backend: wasm');
    expect(stdout).toMatch(/final test accuracy \d\.\d{4}/);

    const store = join(dir, 'mlruns');
    const experiments = readdirSync(store).filter((name) => /^\d+$/.test(name) && name !== '0');
    expect(experiments).toHaveLength(1);
    const experimentDir = join(store, experiments[0] as string);
    expect(parse(readFileSync(join(experimentDir, 'meta.yaml'), 'utf8')).name).toBe('cli-test');
    const runs = readdirSync(experimentDir).filter((name) => name !== 'meta.yaml');
    expect(runs).toHaveLength(1);
    const runDir = join(experimentDir, runs[0] as string);
    const meta = parse(readFileSync(join(runDir, 'meta.yaml'), 'utf8'));
    expect(meta.status).toBe(3);
    expect(meta.end_time).toBeGreaterThanOrEqual(meta.start_time);

    const lossLines = readFileSync(join(runDir, 'metrics/train/loss'), 'utf8').trim().split('\n');
    expect(lossLines.map((line) => Number(line.split(' ')[2]))).toEqual([1, 2, 3, 4]);
    const evalSteps = readFileSync(join(runDir, 'metrics/eval/accuracy'), 'utf8').trim().split('\n');
    expect(evalSteps.map((line) => Number(line.split(' ')[2]))).toEqual([2, 4]);
    expect(readFileSync(join(runDir, 'params/model.d_model'), 'utf8')).toBe('16');
    expect(readFileSync(join(runDir, 'tags/interleave.backend'), 'utf8')).toBe('wasm');
    expect(readFileSync(join(runDir, 'tags/mlflow.runName'), 'utf8')).toBe('tiny-hybrid');
    expect(readFileSync(join(runDir, 'tags/interleave.config_hash'), 'utf8')).toMatch(/^[0-9a-f]{16}$/);
    expect(parse(readFileSync(join(runDir, 'artifacts/config.yaml'), 'utf8')).train.steps).toBe(4);

    const weights = await readSafetensorsFile(join(runDir, 'artifacts/checkpoint/model.safetensors'));
    expect(Object.keys(weights.tensors)).toEqual(
      expect.arrayContaining([
        'embedding.weight',
        'layers.0.mixer.in_proj.weight',
        'layers.0.mixer.A_log',
        'layers.1.mixer.q_proj.weight',
        'layers.1.mlp.gate_proj.weight',
        'norm_f.weight',
      ]),
    );
    expect(weights.tensors['layers.0.mixer.conv1d.weight']?.shape).toEqual([32, 1, 4]);
    const trainerState = JSON.parse(readFileSync(join(runDir, 'artifacts/checkpoint/trainer.json'), 'utf8'));
    expect(trainerState).toMatchObject({ step: 4, data_position: 4, seed: 3, backend: 'wasm' });
    const optimizer = await readSafetensorsFile(join(runDir, 'artifacts/checkpoint/optimizer.safetensors'));
    expect(optimizer.tensors['layers.0.mixer.A_log.exp_avg_sq']?.shape).toEqual([32, 4]);
  });
});

describe('interleave generate', () => {
  it('continues a prompt from a trained run in step mode', () => {
    const dir = workspace({ 'tiny.yaml': TINY });
    expect(interleave(['train', 'tiny.yaml'], dir).status).toBe(0);
    const store = join(dir, 'mlruns');
    const experiment = readdirSync(store).find((name) => /^\d+$/.test(name) && name !== '0') as string;
    const run = readdirSync(join(store, experiment)).find((name) => name !== 'meta.yaml') as string;
    const { status, stdout, stderr } = interleave(
      ['generate', join(store, experiment, run), '--prompt-tokens', '3,20,4,21,3', '--max-new', '12', '--stats'],
      dir,
    );
    expect(status, stderr).toBe(0);
    const tokens = stdout.trim().split(' ').map(Number);
    expect(tokens.slice(0, 5)).toEqual([3, 20, 4, 21, 3]);
    expect(tokens).toHaveLength(17);
    expect(tokens.every((token) => Number.isInteger(token) && token >= 0 && token < 32)).toBe(true);
    // Mamba + a window of 8: the memory held after the first and the last step is the same.
    const [, first, last] = /memory (\d+) bytes after the first step, (\d+) after the last/.exec(stderr) ?? [];
    expect(first).toBeDefined();
    expect(Number(last)).toBe(Number(first));
  });

  it('names a bad prompt in one line', () => {
    const { status, stderr } = interleave(['generate', 'nowhere', '--prompt-tokens', '1,x'], workspace({}));
    expect(status).not.toBe(0);
    expectOneCleanLine(stderr, "--prompt-tokens '1,x'");
  });
});
