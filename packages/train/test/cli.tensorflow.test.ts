import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

// The command line on the native TensorFlow backend (`pnpm test:tensorflow`, after
// `pnpm setup:tensorflow`): `backend: auto` must pick it, and a model with every built-in block
// must train, evaluate, generate and sweep there, reproducibly.

const CLI = resolve(import.meta.dirname, '../bin/interleave.mjs');

function interleave(args: string[], cwd: string) {
  const env = { ...process.env };
  delete env.INTERLEAVE_BACKEND;
  const result = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', env });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const EVERY_BLOCK = `name: every-block
seed: 5
backend: auto
model:
  vocab_size: 32
  d_model: 16
  layers:
    - { block: mamba, d_state: 4 }
    - { block: swa, window: 8, heads: 2, mlp: { expansion: 2 } }
    - { block: rglru }
    - { block: hyena, max_len: 16 }
    - { block: attention, heads: 2 }
task: { name: mqar, seq_len: 16, num_kv_pairs: 2, test_examples: 16 }
train:
  steps: 4
  batch_size: 4
  optimizer: { name: adamw, lr: 1.0e-3 }
  eval_every: 2
  log_every: 1
tracking: { uri: ./mlruns, experiment: tensorflow-test }
`;

function workspace(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'interleave-tensorflow-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

function runDirs(dir: string, experimentName?: string): string[] {
  const store = join(dir, 'mlruns');
  const dirs: string[] = [];
  for (const experiment of readdirSync(store).filter((name) => /^\d+$/.test(name) && name !== '0')) {
    const meta = readFileSync(join(store, experiment, 'meta.yaml'), 'utf8');
    if (experimentName !== undefined && !meta.includes(`name: ${experimentName}`)) continue;
    for (const run of readdirSync(join(store, experiment)).filter((name) => name !== 'meta.yaml')) {
      dirs.push(join(store, experiment, run));
    }
  }
  return dirs;
}

function losses(runDir: string): number[] {
  const lines = readFileSync(join(runDir, 'metrics/train/loss'), 'utf8').trim().split('\n');
  return lines.map((line) => Number(line.split(' ')[1]));
}

describe('interleave on the native TensorFlow backend', () => {
  it('auto picks tensorflow; every block trains, evaluates and generates there; the same seed gives the same losses', () => {
    const dir = workspace({ 'every-block.yaml': EVERY_BLOCK });
    const first = interleave(['train', 'every-block.yaml'], dir);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toContain('backend: tensorflow (@tensorflow/tfjs-node, TensorFlow 2.21.0)');
    expect(first.stdout).toMatch(/final test accuracy \d\.\d{4} .* on tensorflow/);
    const second = interleave(['train', 'every-block.yaml'], dir);
    expect(second.status, second.stderr).toBe(0);

    const [runA, runB] = runDirs(dir) as [string, string];
    expect(readFileSync(join(runA, 'tags/interleave.backend'), 'utf8')).toBe('tensorflow');
    const lossesA = losses(runA);
    expect(lossesA).toHaveLength(4);
    expect(lossesA.every(Number.isFinite)).toBe(true);
    expect(losses(runB)).toEqual(lossesA);

    const generated = interleave(['generate', runA, '--prompt-tokens', '3,20,4,21,3', '--max-new', '8'], dir);
    expect(generated.status, generated.stderr).toBe(0);
    const tokens = generated.stdout.trim().split(' ').map(Number);
    expect(tokens.slice(0, 5)).toEqual([3, 20, 4, 21, 3]);
    expect(tokens).toHaveLength(13);
    expect(tokens.every((token) => Number.isInteger(token) && token >= 0 && token < 32)).toBe(true);

    const runId = basename(runA);
    const evaluated = interleave(
      ['eval', runId, '--task', 'mqar_grid', '--set', 'seq_len=[16]', '--set', 'num_kv_pairs=[2]'],
      dir,
    );
    expect(evaluated.status, evaluated.stderr).toBe(0);
    // The accuracy and its 95% Wilson interval.
    expect(evaluated.stdout).toContain('"eval/mqar/L16_K2/accuracy_ci_low"');
    expect(evaluated.stdout).toContain(`logged 3 metrics to run ${runId}`);
  });

  it('runs a sweep whose trials train on tensorflow', () => {
    const sweep = EVERY_BLOCK.replace('name: every-block', 'name: tiny-sweep').replace(
      'tracking: { uri: ./mlruns, experiment: tensorflow-test }',
      'tracking: { uri: ./mlruns, experiment: tensorflow-sweep }\nsweep:\n  method: grid\n  parameters:\n    train.optimizer.lr: [1.0e-3, 3.0e-3]',
    );
    const dir = workspace({ 'sweep.yaml': sweep });
    const result = interleave(['sweep', 'sweep.yaml', '--workers', '1'], dir);
    expect(result.status, result.stderr).toBe(0);
    const trials = runDirs(dir, 'tensorflow-sweep').filter((run) => {
      try {
        return readFileSync(join(run, 'tags/interleave.backend'), 'utf8') === 'tensorflow';
      } catch {
        return false;
      }
    });
    expect(trials).toHaveLength(2);
  });
});
