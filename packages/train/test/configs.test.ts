import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { trainFromConfig } from '../src/run/train-run.js';

const CONFIGS = resolve(import.meta.dirname, '../../../configs');
const runnable = readdirSync(CONFIGS).filter((name) => name.endsWith('.yaml'));
const quiet = { write: () => true, isTTY: false };

// Every example in configs/ loads, builds and takes a few real training steps; the full-length
// demo run is in demo.slow.test.ts.
describe.each(runnable)('configs/%s', (name) => {
  it('trains for two steps and evaluates', async () => {
    const uri = mkdtempSync(join(tmpdir(), 'interleave-configs-'));
    const result = await trainFromConfig({
      configFile: join(CONFIGS, name),
      overrides: ['backend=wasm', 'train.steps=2', 'train.batch_size=2', 'task.test_examples=4', `tracking.uri=${uri}`],
      output: quiet,
    });
    expect(result.status).toBe('FINISHED');
    expect(result.losses).toHaveLength(2);
    expect(result.losses.every(Number.isFinite)).toBe(true);
    expect(result.finalEval.examples).toBe(4);
  });
});

it('finds the example configs', () => {
  expect(runnable).toEqual(expect.arrayContaining(['mqar-hybrid.yaml', 'mqar-mamba.yaml', 'mqar-swa.yaml']));
});
