import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findRuns } from '@interleave/core';
import { describe, expect, it } from 'vitest';
import { trainFromConfig } from '../src/run/train-run.js';

const CONFIG = `name: resume-check
seed: 5
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
  optimizer: { name: adamw, lr: 3.0e-3 }
  schedule: { warmup_steps: 2 }
tracking: { uri: ./mlruns, experiment: resume }
`;

const quiet = { write: () => true, isTTY: false };

/** Stops the loop after `steps` updates, as Ctrl-C would. */
function stopAfter(steps: number) {
  let checks = 0;
  return {
    get stopped() {
      return checks++ >= steps;
    },
  };
}

describe('resume', () => {
  it('continues an interrupted run bit for bit, in the same MLflow run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'interleave-resume-'));
    const file = join(dir, 'config.yaml');
    writeFileSync(file, CONFIG);
    const overrides = [`tracking.uri=${join(dir, 'mlruns')}`];

    const straight = await trainFromConfig({ configFile: file, overrides, output: quiet });
    const interrupted = await trainFromConfig({ configFile: file, overrides, output: quiet, stopSignal: stopAfter(3) });
    expect(interrupted.status).toBe('KILLED');
    expect(interrupted.losses).toEqual(straight.losses.slice(0, 3));

    const resumed = await trainFromConfig({
      configFile: file,
      overrides,
      output: quiet,
      resumeRunId: interrupted.runId,
    });
    expect(resumed.status).toBe('FINISHED');
    expect(resumed.runId).toBe(interrupted.runId);
    expect(resumed.losses).toEqual(straight.losses.slice(3));
    expect(resumed.finalEval).toEqual(straight.finalEval);

    const run = (await findRuns(join(dir, 'mlruns'), 'resume')).find((r) => r.runId === interrupted.runId);
    expect(run?.status).toBe('FINISHED');
    const lossSteps = readFileSync(join(runFolder(run!), 'metrics/train/loss'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => Number(line.split(' ')[2]));
    expect(lossSteps).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('refuses to resume with a different config, and a run that finished', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'interleave-resume-'));
    const file = join(dir, 'config.yaml');
    writeFileSync(file, CONFIG);
    const overrides = [`tracking.uri=${join(dir, 'mlruns')}`];
    const interrupted = await trainFromConfig({ configFile: file, overrides, output: quiet, stopSignal: stopAfter(2) });
    await expect(
      trainFromConfig({
        configFile: file,
        overrides: [...overrides, 'train.optimizer.lr=0.01'],
        output: quiet,
        resumeRunId: interrupted.runId,
      }),
    ).rejects.toThrow(/was trained with another config/);
    await trainFromConfig({ configFile: file, overrides, output: quiet, resumeRunId: interrupted.runId });
    await expect(
      trainFromConfig({ configFile: file, overrides, output: quiet, resumeRunId: interrupted.runId }),
    ).rejects.toThrow(/already finished/);
  });
});

/** The run's folder in the file store: its artifact folder's parent. */
function runFolder(run: { artifactUri: string }): string {
  return dirname(fileURLToPath(run.artifactUri));
}
