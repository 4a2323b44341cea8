import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { prepareRun } from '../src/run/prepare-run.js';
import { trainFromConfig } from '../src/run/train-run.js';
import { planSweep } from '../src/sweep/plan.js';

const CONFIGS = resolve(import.meta.dirname, '../../../configs');
// The committed Tempest excerpts stand in for data/shakespeare (fetched by a script, not committed).
const FIXTURES = resolve(import.meta.dirname, '../../eval/test/fixtures/lm');
const models = readdirSync(join(CONFIGS, 'lm')).filter((name) => name.endsWith('.yaml') && name !== 'base.yaml');
const onFixtures = [
  `task.data=${FIXTURES}`,
  'task.document_tokens=1024',
  'task.seq_len=32',
  'task.validation_tokens=64',
];

describe.each(models)('configs/lm/%s', (name) => {
  it('trains for two steps on text and reports bits per byte', async () => {
    const uri = mkdtempSync(join(tmpdir(), 'interleave-lm-configs-'));
    const lines: string[] = [];
    const result = await trainFromConfig({
      configFile: join(CONFIGS, 'lm', name),
      overrides: ['backend=wasm', 'train.steps=2', 'train.batch_size=2', `tracking.uri=${uri}`, ...onFixtures],
      output: { write: (text: string) => lines.push(text) > 0, isTTY: false },
    });
    expect(result.status).toBe('FINISHED');
    expect(result.losses.every(Number.isFinite)).toBe(true);
    // Near log(256) nats per byte before training: the model starts from uniform predictions.
    expect(result.finalEval.loss).toBeGreaterThan(4);
    expect(lines.join('')).toMatch(/bits\/byte/);
    expect(lines.join('')).toMatch(/lm_validation: loss [\d.]+, perplexity [\d.]+, [\d.]+ bits\/byte/);
  });
});

it('the LM compute sweep has five architectures at four widths, each a valid lm run', async () => {
  const plan = await planSweep(join(CONFIGS, 'sweeps', 'lm-compute.yaml'), onFixtures);
  expect(plan.trials).toHaveLength(20);
  expect(models).toEqual(
    expect.arrayContaining(['mamba.yaml', 'swa.yaml', 'attention.yaml', 'mamba-swa.yaml', 'rglru-attention.yaml']),
  );
  const prepared = await prepareRun(join(CONFIGS, 'lm', 'shakespeare-hybrid.yaml'), onFixtures);
  expect(prepared.loaded.config.task).toMatchObject({ name: 'lm', tokenizer: 'byte', seq_len: 32 });
});

/** Stops the loop after `steps` updates, as Ctrl-C would. */
function stopAfter(steps: number) {
  let checks = 0;
  return {
    get stopped() {
      return checks++ >= steps;
    },
  };
}

it('an interrupted lm run resumes on exactly the batches it would have seen, across epoch boundaries', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'interleave-lm-resume-'));
  const file = join(dir, 'lm.yaml');
  writeFileSync(
    file,
    `name: lm-resume
seed: 4
backend: wasm
model:
  vocab_size: 256
  d_model: 16
  layers:
    - { block: mamba, d_state: 4 }
task: { name: lm, data: ${FIXTURES}, seq_len: 32, document_tokens: 1024, validation_tokens: 64 }
train:
  steps: 8
  batch_size: 64
  optimizer: { name: adamw, lr: 3.0e-3 }
tracking: { uri: ${join(dir, 'mlruns')}, experiment: lm-resume }
`,
  );
  const output = { write: () => true, isTTY: false };
  const straight = await trainFromConfig({ configFile: file, output });
  const interrupted = await trainFromConfig({ configFile: file, output, stopSignal: stopAfter(3) });
  expect(interrupted.losses).toEqual(straight.losses.slice(0, 3));
  const resumed = await trainFromConfig({ configFile: file, output, resumeRunId: interrupted.runId });
  // About 170 train windows of 32 bytes: eight batches of 64 run through several epochs.
  expect(resumed.losses).toEqual(straight.losses.slice(3));
  expect(resumed.finalEval).toEqual(straight.finalEval);
});
