import { mkdtempSync, readdirSync } from 'node:fs';
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
  const prepared = await prepareRun(join(CONFIGS, 'lm', 'shakespeare-hybrid.yaml'));
  expect(prepared.loaded.config.task).toMatchObject({ name: 'lm', data: 'data/shakespeare', tokenizer: 'byte' });
});
