import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { capabilitiesOf, LanguageModel, SeededRandom } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { summarizeModel } from '../src/inspect/model-summary.js';
import { prepareRun } from '../src/run/prepare-run.js';

const REPO = resolve(import.meta.dirname, '../../..');
const CLI = resolve(REPO, 'packages/train/bin/interleave.mjs');

function interleave(args: string[], cwd = REPO) {
  const result = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

interface InspectJson {
  seqLen: number;
  layers: { block: string; parameters: number; flops: { total: number }; stateBytes: number }[];
  parts: { name: string; parameters: number; flops: { total: number } }[];
  total: { parameters: number; flops: { total: number }; stateBytes: number; stateGrowsWithLength: boolean };
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('interleave inspect', () => {
  it('prints per-layer parameters, FLOPs and state of configs/mqar-hybrid.yaml as JSON whose totals add up', async () => {
    const { status, stdout, stderr } = interleave(['inspect', 'configs/mqar-hybrid.yaml', '--json']);
    expect(stderr).toBe('');
    expect(status).toBe(0);
    const summary = JSON.parse(stdout) as InspectJson;
    expect(summary.seqLen).toBe(64);
    expect(summary.layers.map((layer) => layer.block)).toEqual(['mamba', 'swa']);
    const rows = [...summary.layers, ...summary.parts];
    expect(summary.total.parameters).toBe(rows.reduce((sum, row) => sum + row.parameters, 0));
    expect(summary.total.flops.total).toBeCloseTo(
      rows.reduce((sum, row) => sum + row.flops.total, 0),
      6,
    );
    expect(summary.total.stateBytes).toBe(summary.layers.reduce((sum, layer) => sum + layer.stateBytes, 0));
    // The closed forms, by hand: Mamba d_inner 128, d_state 16, d_conv 4 → 4·128·(16 + 3);
    // SWA window 48 over 2 heads of 32 → keys and values 2·48·64 floats.
    expect(summary.layers.map((layer) => layer.stateBytes)).toEqual([4 * 128 * 19, 4 * 2 * 48 * 64]);
    expect(summary.total.stateGrowsWithLength).toBe(false);

    // Parameters equal the count of the model the trainer would build.
    const prepared = await prepareRun(resolve(REPO, 'configs/mqar-hybrid.yaml'));
    const model = LanguageModel.build({
      container: prepared.container,
      config: prepared.loaded.config.model,
      layers: prepared.layers,
      rng: new SeededRandom(0),
      backend: capabilitiesOf('cpu'),
    });
    try {
      expect(summary.total.parameters).toBe(model.parameters.count());
      expect(summary.total.flops.total).toBeCloseTo(model.flopsPerToken(64).total, 6);
    } finally {
      model.dispose();
    }
  });

  it('sizes a growing state (full attention) at the task length and says so', () => {
    const dir = mkdtempSync(join(tmpdir(), 'interleave-inspect-'));
    writeFileSync(
      join(dir, 'attention.yaml'),
      `name: grows
model: { vocab_size: 300, d_model: 32, layers: [{ block: attention, heads: 2 }, { block: rglru }] }
task: { name: mqar, seq_len: 128, num_kv_pairs: 4 }
train: { steps: 1, batch_size: 2, optimizer: { lr: 1.0e-3 } }
`,
    );
    const json = interleave(['inspect', 'attention.yaml', '--json'], dir);
    expect(json.stderr).toBe('');
    const summary = JSON.parse(json.stdout) as InspectJson;
    // Keys and values of 32 floats for each of the 128 tokens; RG-LRU d_rnn 43 · conv_width 4.
    expect(summary.layers.map((layer) => layer.stateBytes)).toEqual([4 * 2 * 32 * 128, 4 * 43 * 4]);
    expect(summary.total.stateGrowsWithLength).toBe(true);
    const table = interleave(['inspect', 'attention.yaml'], dir);
    expect(table.status).toBe(0);
    expect(table.stdout).toContain('32.00 KiB (grows; at 128 tokens)');
  });

  it('summarizes a model built in-process the same way (no state tensors involved)', async () => {
    const prepared = await prepareRun(resolve(REPO, 'configs/mqar-hybrid.yaml'));
    const model = LanguageModel.build({
      container: prepared.container,
      config: prepared.loaded.config.model,
      layers: prepared.layers,
      rng: new SeededRandom(0),
      backend: capabilitiesOf('cpu'),
    });
    try {
      const before = tf.memory().numTensors;
      const summary = summarizeModel(model, 256);
      expect(tf.memory().numTensors).toBe(before);
      // SWA's cost per token grows with L up to its window, Mamba's does not.
      const at64 = summarizeModel(model, 64);
      expect(summary.layers[0]?.flops.total).toBe(at64.layers[0]?.flops.total);
      expect(summary.layers[1]?.flops.total).toBeGreaterThan(at64.layers[1]?.flops.total ?? Infinity);
    } finally {
      model.dispose();
    }
  });

  it('rejects a bad config in one line', () => {
    const { status, stderr } = interleave(['inspect', 'nosuch.yaml']);
    expect(status).not.toBe(0);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toContain('nosuch.yaml');
  });
});
