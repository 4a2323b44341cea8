import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findRuns } from '@interleave/core';
import { describe, expect, it } from 'vitest';
import { TRAINER_FILE } from '../src/checkpoint/checkpoint.js';
import { trainFromConfig } from '../src/run/train-run.js';

// A run whose numbers stop meaning anything ends FAILED with one line naming the step and the
// culprit, and keeps its last good checkpoint, instead of training on to NaN metrics.
const PLUGIN = resolve(import.meta.dirname, 'fixtures/failing-blocks.ts');
const quiet = { write: () => true, isTTY: false };

function config(backend: string, failingLayer: string, train: string): string {
  return `name: failure
seed: 2
backend: ${backend}
plugins: [${PLUGIN}]
model:
  vocab_size: 16
  d_model: 8
  layers:
    - ${failingLayer}
    - { block: swa, window: 4, heads: 2 }
task: { name: mqar, seq_len: 8, num_kv_pairs: 1, test_examples: 4 }
train: { batch_size: 4, optimizer: { name: adamw, lr: 1.0e-3 }, log_every: 1, ${train} }
tracking: { uri: ./mlruns, experiment: failure }
`;
}

async function failingRun(yaml: string) {
  const dir = mkdtempSync(join(tmpdir(), 'interleave-failure-'));
  const file = join(dir, 'config.yaml');
  writeFileSync(file, yaml);
  const uri = join(dir, 'mlruns');
  let message = '';
  await trainFromConfig({ configFile: file, overrides: [`tracking.uri=${uri}`], output: quiet }).then(
    () => expect.fail('the run should have failed'),
    (error: Error) => {
      message = error.message;
    },
  );
  const [run] = await findRuns(uri, 'failure');
  return { message, run: run! };
}

describe('a run that stops making sense fails', () => {
  it('names the step and the first non-finite gradient when the gradients blow up before the loss', async () => {
    const { message, run } = await failingRun(
      config('wasm', '{ block: exploding_gradient, from: 3 }', 'steps: 5, checkpoint_every: 1, eval_every: null'),
    );
    expect(message).toMatch(
      /^the gradient norm became (NaN|Infinity) at step 3 while the loss was \d+\.\d{4}; first non-finite gradient: layers\.0\.mixer\.gain;/,
    );
    expect(message).not.toContain('\n');
    expect(run.status).toBe('FAILED');
    expect(run.tags['interleave.error']).toBe(message);
    // The last good checkpoint (after step 2) is kept; nothing from the failed step replaced it.
    const trainerState = JSON.parse(readFileSync(join(runFolder(run), 'artifacts/checkpoint', TRAINER_FILE), 'utf8'));
    expect(trainerState.step).toBe(2);
  });

  it('fails on an evaluation whose loss is NaN, though training stayed finite', async () => {
    // Forward calls: step 1, step 2, then the one evaluation batch (4 test examples, batch 4).
    const { message, run } = await failingRun(
      config('wasm', '{ block: nan_forward, from: 3 }', 'steps: 2, eval_every: 2'),
    );
    expect(message).toBe('the test loss became NaN in the evaluation at step 2 (4 examples)');
    expect(run.status).toBe('FAILED');
  });

  it('on webgpu, fails with one line naming the program and sizes of a GPU validation error', async () => {
    const { message, run } = await failingRun(
      config('webgpu', '{ block: oversized_binding }', 'steps: 2, eval_every: null'),
    );
    expect(message).toMatch(
      /^webgpu failed during training step 1, in FillProgram \(no inputs → \[\d+\]\): GPUValidationError: /,
    );
    expect(message).toMatch(/binding size/i);
    expect(message).not.toContain('\n');
    expect(run.status).toBe('FAILED');
  });

  it('on webgpu, fails an evaluation whose step form hits a GPU validation error, naming it', async () => {
    const { message, run } = await failingRun(`name: failure
seed: 2
backend: webgpu
plugins: [${PLUGIN}]
model:
  vocab_size: 16
  d_model: 8
  layers:
    - { block: oversized_binding, where: step }
    - { block: swa, window: 4, heads: 2 }
task: { name: induction_heads, seq_len: 16, vocab: 16, test_examples: 4 }
train: { batch_size: 4, steps: 2, eval_every: null, optimizer: { name: adamw, lr: 1.0e-3 }, log_every: 1 }
evals: [{ task: induction_extrapolation, lengths: [8], examples: 4, batch_size: 4 }]
tracking: { uri: ./mlruns, experiment: failure }
`);
    expect(message).toMatch(
      /^webgpu failed during evaluation, in FillProgram \(no inputs → \[\d+\]\): GPUValidationError: /,
    );
    expect(message).not.toContain('\n');
    expect(run.status).toBe('FAILED');
  });
});

/** The run's folder in the file store: its artifact folder's parent. */
function runFolder(run: { artifactUri: string }): string {
  return dirname(fileURLToPath(run.artifactUri));
}
