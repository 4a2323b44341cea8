import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError, configHash } from '@interleave/core';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { planSweep } from '../src/sweep/plan.js';
import { interleaveSync, TINY_GRID, workspace } from './sweep-support.js';

/** The keys these tests read from a trial's resolved config. */
interface TrialConfig {
  seed: number;
  model: { d_model: number };
  train: { steps: number; optimizer: { lr: number } };
  tracking: { uri: string };
  sweep: unknown;
}

const trialConfig = (text: string) => parse(text) as TrialConfig;

async function plan(text: string, overrides: string[] = []) {
  const dir = workspace({ 'sweep.yaml': text });
  return { dir, plan: await planSweep(join(dir, 'sweep.yaml'), overrides) };
}

async function planError(text: string): Promise<string> {
  const dir = workspace({ 'sweep.yaml': text });
  try {
    await planSweep(join(dir, 'sweep.yaml'));
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message.replace(join(dir, 'sweep.yaml'), 'sweep.yaml');
  }
  throw new Error('the sweep was planned');
}

describe('planSweep', () => {
  it('makes one trial per point, identified by the hash of its resolved config', async () => {
    const { dir, plan: grid } = await plan(TINY_GRID);
    expect(grid.trials).toHaveLength(12);
    expect(grid.parameterKeys).toEqual(['model.d_model', 'train.optimizer.lr', 'seed']);
    const trial = grid.trials[7]!;
    expect(trial.index).toBe(8);
    expect(trial.total).toBe(12);
    expect(trial.params).toEqual({ 'model.d_model': 16, 'train.optimizer.lr': 0.001, seed: 2 });
    const config = trialConfig(trial.config);
    expect(config.model.d_model).toBe(16);
    expect(config.train.optimizer.lr).toBe(0.001);
    expect(config.seed).toBe(2);
    // A trial is a plain training config: no sweep, and the store made absolute for remote workers.
    expect(config.sweep).toBeNull();
    expect(config.tracking.uri).toBe(join(process.cwd(), 'mlruns'));
    expect(trial.tracking).toEqual({ uri: join(process.cwd(), 'mlruns'), experiment: 'sweep-test' });
    expect(trial.trialId).toBe(configHash(config));
    expect(new Set(grid.trials.map((t) => t.trialId)).size).toBe(12);
    expect(trial.sourceTags['interleave.config_file']).toBe(join(dir, 'sweep.yaml'));
  });

  it('keeps trial ids when the sweep grows, so finished trials stay finished', async () => {
    const small = (await plan(TINY_GRID)).plan;
    const grown = (await plan(TINY_GRID.replace('model.d_model: [8, 16]', 'model.d_model: [8, 12, 16]'))).plan;
    expect(grown.trials).toHaveLength(18);
    const grownIds = new Set(grown.trials.map((trial) => trial.trialId));
    for (const trial of small.trials) expect(grownIds.has(trial.trialId)).toBe(true);
    expect(grown.sweepId).not.toBe(small.sweepId);
  });

  it('applies --set overrides to every trial', async () => {
    const { plan: overridden } = await plan(TINY_GRID, ['train.steps=2']);
    for (const trial of overridden.trials) expect(trialConfig(trial.config).train.steps).toBe(2);
  });

  it('drops repeated points', async () => {
    const text = TINY_GRID.replace(
      /sweep:[\s\S]*$/,
      'sweep:\n  method: random\n  trials: 20\n  parameters:\n    model.d_model: [8, 16]\n',
    );
    const { plan: random } = await plan(text);
    expect(random.trials.map((trial) => trialConfig(trial.config).model.d_model).sort()).toEqual([16, 8]);
    expect(random.duplicates).toBe(18);
  });

  it('fails before anything runs on an invalid value, naming the trial, the key and where it is written', async () => {
    expect(await planError(TINY_GRID.replace('model.d_model: [8, 16]', 'model.d_model: [8, -16]'))).toBe(
      'sweep.yaml:19:24: model.d_model: must be > 0 (got -16) (sweep trial 7 of 12: model.d_model=-16, train.optimizer.lr=0.001, seed=1)',
    );
    // Block keys are checked by the block's own schema, as in training.
    expect(await planError(TINY_GRID.replace('model.d_model: [8, 16]', 'model.layers.0.d_state: [4, 0]'))).toBe(
      'sweep.yaml:19:33: model.layers[0].d_state: must be > 0 (got 0) (sweep trial 7 of 12: model.layers.0.d_state=0, train.optimizer.lr=0.001, seed=1)',
    );
  });

  it('fails on an invalid parameter path', async () => {
    expect(await planError(TINY_GRID.replace('model.d_model: [8, 16]', 'model.d_modle: [8, 16]'))).toMatch(
      /^sweep\.yaml:19:21: model\.d_modle: unknown key 'd_modle' .*\(sweep trial 1 of 12: model\.d_modle=8, /,
    );
    expect(await planError(TINY_GRID.replace('model.d_model: [8, 16]', 'train.steps.every: [8, 16]'))).toMatch(
      /^sweep\.yaml:19:\d+: train\.steps: cannot set a key inside 'train\.steps': it is a number/,
    );
    expect(await planError(TINY_GRID.replace('model.d_model: [8, 16]', 'model..d_model: [8, 16]'))).toMatch(
      /^sweep\.yaml:19:5: sweep\.parameters\.model\.\.d_model: invalid parameter path: bad key path/,
    );
  });
});

describe('configs/sweeps', () => {
  it('mqar-small-grid.yaml is a valid 12-trial sweep', async () => {
    const example = await planSweep(resolve(import.meta.dirname, '../../../configs/sweeps/mqar-small-grid.yaml'));
    expect(example.trials).toHaveLength(12);
    expect(example.parameterKeys).toEqual(['model.d_model', 'train.optimizer.lr', 'model.layers.1.window']);
  });
});

describe('interleave sweep: bad input', () => {
  it('prints one line naming the trial and the key, and starts nothing', () => {
    const dir = workspace({
      'sweep.yaml': TINY_GRID.replace('train.optimizer.lr: [1.0e-3', 'train.optimizer.lr: [-1.0e-3'),
    });
    const { status, stdout, stderr } = interleaveSync(['sweep', 'sweep.yaml', '--workers', '2'], dir);
    expect(status).toBe(1);
    expect(stdout).toBe('');
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toBe(
      'interleave: sweep.yaml:20:26: train.optimizer.lr: must be > 0 (got -0.001) (sweep trial 1 of 12: model.d_model=8, train.optimizer.lr=-0.001, seed=1)',
    );
    expect(existsSync(join(dir, 'mlruns'))).toBe(false);
  });

  it('refuses a config without a sweep: section', () => {
    const dir = workspace({ 'plain.yaml': TINY_GRID.slice(0, TINY_GRID.indexOf('sweep:')) });
    const { status, stderr } = interleaveSync(['sweep', 'plain.yaml'], dir);
    expect(status).toBe(1);
    expect(stderr.trim()).toBe(
      "interleave: plain.yaml:1:1: sweep: no 'sweep:' section; train a single config with: interleave train plain.yaml",
    );
  });
});
