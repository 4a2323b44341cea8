import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { prepareRun } from '../src/run/prepare-run.js';
import { trainFromConfig } from '../src/run/train-run.js';

const CONFIGS = resolve(import.meta.dirname, '../../../configs');
const runnable = readdirSync(CONFIGS).filter((name) => name.endsWith('.yaml'));
const quiet = { write: () => true, isTTY: false };
// bench-hybrid.yaml is the benchmark model (docs/design.md#benchmarks: 1024-token sequences at d_model 256), whose
// training step at batch 2 exceeds tfjs-wasm's 4 GiB heap (bench-hybrid-gpu.yaml is the same at the
// GPU's batch 16); their layers are checked here on 128-token sequences at batch 2, which keeps
// this test in seconds.
const benchShapes = ['task.seq_len=128', 'task.num_kv_pairs=8', 'train.batch_size=2'];
const shorter: Record<string, string[]> = { 'bench-hybrid.yaml': benchShapes, 'bench-hybrid-gpu.yaml': benchShapes };

// Every example in configs/ loads, builds and takes a few real training steps; the full-length
// demo run is in demo.slow.test.ts.
describe.each(runnable)('configs/%s', (name) => {
  it('validates as written, evals: included', async () => {
    const prepared = await prepareRun(join(CONFIGS, name));
    expect(prepared.evaluations).toHaveLength(prepared.loaded.config.evals.length);
  });

  // Its evals: (up to 16k tokens in step mode, for induction heads) are left out here; the
  // evaluations themselves are tested in evaluations.test.ts.
  it('trains for two steps and evaluates', async () => {
    const uri = mkdtempSync(join(tmpdir(), 'interleave-configs-'));
    const result = await trainFromConfig({
      configFile: join(CONFIGS, name),
      overrides: [
        'backend=wasm',
        'train.steps=2',
        'train.batch_size=2',
        'task.test_examples=4',
        `tracking.uri=${uri}`,
        'evals=[]',
        ...(shorter[name] ?? []),
      ],
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
