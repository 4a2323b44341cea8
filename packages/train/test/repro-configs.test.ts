import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { expandLayers, type ModelConfig } from '@interleave/core';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { trainFromConfig } from '../src/run/train-run.js';
import { planSweep } from '../src/sweep/index.js';

const REPRO = resolve(import.meta.dirname, '../../../configs/repro');
const quiet = { write: () => true, isTTY: false };

/** Every runnable file under configs/repro: the `base/` folders hold the shared protocols they extend. */
function leafConfigs(directory: string): string[] {
  return readdirSync(directory).flatMap((name) => {
    const path = join(directory, name);
    if (statSync(path).isDirectory()) return name === 'base' ? [] : leafConfigs(path);
    return name.endsWith('.yaml') ? [path] : [];
  });
}

const files = leafConfigs(REPRO);
const name = (file: string) => relative(REPRO, file);

interface TrialConfig {
  model: { vocab_size: number; d_model: number; layers: ModelConfig['layers']; max_position_embeddings?: number };
  task: Record<string, unknown>;
  train: { steps: number; batch_size: number; optimizer: { lr: number } };
  evals: Record<string, unknown>[];
}

/** The layer entries after `repeat`/`pattern` expansion. */
const layersOf = (trial: TrialConfig) => expandLayers(trial.model.layers).map((layer) => layer.entry);

async function trialsOf(file: string): Promise<TrialConfig[]> {
  const plan = await planSweep(file);
  return plan.trials.map((trial) => parse(trial.config) as TrialConfig);
}

it('finds the three reproductions', () => {
  const families = new Set(files.map((file) => name(file).split('/')[0]));
  expect([...families].sort()).toEqual(['based-fig2', 'mamba-induction', 'zoology-fig2']);
  expect(files.filter((file) => name(file).startsWith('zoology-fig2/'))).toHaveLength(18);
});

describe.each(files.map(name))('configs/repro/%s', (file) => {
  it('expands into valid trials, as many as its header says', async () => {
    const path = join(REPRO, file);
    const stated = /^# (\d+) trials/m.exec(readFileSync(path, 'utf8'));
    expect(stated, 'the header states the trial count').not.toBeNull();
    const plan = await planSweep(path);
    expect(plan.trials).toHaveLength(Number(stated?.[1]));
  });
});

describe('the published protocols', () => {
  const logspace = (from: number, to: number, count: number) =>
    Array.from({ length: count }, (_, i) => 10 ** (from + ((to - from) * i) / (count - 1)));
  const expectRates = (rates: number[], expected: number[]) => {
    expect(rates).toHaveLength(expected.length);
    for (const [i, rate] of rates.entries()) expect(Math.abs(rate / (expected[i] as number) - 1)).toBeLessThan(1e-6);
  };

  it('Zoology Figure 2: vocab, data, power laws, epochs, widths, rates, depth and positions', async () => {
    for (const file of files.filter((candidate) => name(candidate).startsWith('zoology-fig2/'))) {
      const trials = await trialsOf(file);
      const [first] = trials;
      if (first === undefined) throw new Error(`${name(file)} has no trials`);
      const seqLen = first.task.seq_len as number;
      expect([64, 128, 256]).toContain(seqLen);
      expect(first.task).toMatchObject({
        num_kv_pairs: seqLen / 16,
        train_examples: 100_000,
        test_examples: 3000,
        train_power_a: 0.01,
        test_power_a: 0.01,
        random_non_queries: false,
      });
      expect(first.model.vocab_size).toBe(8192);
      expect(first.train.batch_size).toBe(seqLen === 256 ? 256 : 512);
      expect(first.train.steps * first.train.batch_size).toBe(64 * 100_000);
      expect([...new Set(trials.map((trial) => trial.model.d_model))]).toEqual([64, 128, 256, 512]);
      expectRates([...new Set(trials.map((trial) => trial.train.optimizer.lr))], logspace(-4, -2, 4));
      const isAttention = name(file).endsWith('/attention.yaml');
      expect(layersOf(first)).toHaveLength(isAttention ? 2 : 4);
      expect(layersOf(first).every((layer) => layer.mlp === undefined)).toBe(true);
      expect(first.model.max_position_embeddings).toBe(isAttention ? seqLen : undefined);
      // Zoology's attention starts from its own init (GPT-2's N(0, 0.02²)), not PyTorch's default.
      if (isAttention) expect(layersOf(first).every((layer) => layer.init === 'zoology')).toBe(true);
    }
  });

  it('Based Figure 2: 2 layers, rates logspace(-3, -1.5, 4), d_state and windows swept', async () => {
    for (const file of files.filter((candidate) => name(candidate).startsWith('based-fig2/'))) {
      const trials = await trialsOf(file);
      expect(trials.every((trial) => layersOf(trial).length === 2)).toBe(true);
      expectRates([...new Set(trials.map((trial) => trial.train.optimizer.lr))], logspace(-3, -1.5, 4));
    }
    const dStates = (await trialsOf(join(REPRO, 'based-fig2/mamba.yaml'))).map(
      (trial) => (layersOf(trial)[0] as { d_state?: number }).d_state,
    );
    expect([...new Set(dStates)]).toEqual([8, 16, 24]);
  });

  it('Mamba induction heads: uniform triggers (the curriculum only where named), 2^6 … 2^16 on 1000 examples', async () => {
    for (const file of files.filter((candidate) => name(candidate).startsWith('mamba-induction/'))) {
      const [trial] = await trialsOf(file);
      expect(trial?.task).toMatchObject({ seq_len: 256, vocab: 16 });
      expect(trial?.task.train_gap_power).toBe(name(file).endsWith('short-gaps.yaml') ? 0.5 : null);
      const evaluation = trial?.evals[0] as { lengths: number[]; examples: number };
      expect(evaluation.lengths).toEqual(Array.from({ length: 11 }, (_, i) => 2 ** (6 + i)));
      expect(evaluation.examples).toBeGreaterThanOrEqual(1000);
    }
  });
});

// One trial of each reproduction really trains: the smallest width of the first file, 2 steps.
describe.each(['zoology-fig2/L64-K4/mamba-swa.yaml', 'based-fig2/swa.yaml', 'mamba-induction/hybrid.yaml'])(
  'configs/repro/%s',
  (file) => {
    it('trains its first trial for two steps', async () => {
      const plan = await planSweep(join(REPRO, file));
      const dir = mkdtempSync(join(tmpdir(), 'interleave-repro-'));
      const trialFile = join(dir, 'trial.yaml');
      writeFileSync(trialFile, plan.trials[0]?.config ?? '');
      const result = await trainFromConfig({
        configFile: trialFile,
        overrides: [
          'backend=wasm',
          'train.steps=2',
          'train.batch_size=2',
          'task.test_examples=4',
          `tracking.uri=${join(dir, 'mlruns')}`,
          'evals=[]',
        ],
        output: quiet,
      });
      expect(result.status).toBe('FINISHED');
      expect(result.losses).toHaveLength(2);
      expect(result.losses.every(Number.isFinite)).toBe(true);
    });
  },
);
