import { readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { planSweep } from '../src/sweep/plan.js';

const MAD_CONFIGS = resolve(import.meta.dirname, '../../../configs/mad');
const TASKS = ['in-context-recall', 'fuzzy-recall', 'noisy-recall', 'selective-copying', 'compression', 'memorization'];

describe('configs/mad', () => {
  it('has one config and one protocol sweep per MAD task, and the CPU-budget sweeps in their own folder', () => {
    const files = readdirSync(MAD_CONFIGS).sort();
    expect(files).toEqual(
      [
        'base.yaml',
        'cpu-budget',
        ...TASKS.map((task) => `${task}.yaml`),
        ...TASKS.map((task) => `sweep-${task}.yaml`),
      ].sort(),
    );
    expect(readdirSync(resolve(MAD_CONFIGS, 'cpu-budget')).sort()).toEqual(
      TASKS.map((task) => `sweep-${task}.yaml`).sort(),
    );
  });

  it.each(TASKS)("sweep-%s.yaml is MAD's grid: 6 architectures × 3 learning rates × 2 weight decays", async (task) => {
    const plan = await planSweep(resolve(MAD_CONFIGS, `sweep-${task}.yaml`));
    expect(plan.trials).toHaveLength(36);
    const blocks = plan.trials.map((trial) =>
      (parse(trial.config).model.layers as { block: string }[]).map((layer) => layer.block).join('+'),
    );
    expect(new Set(blocks)).toEqual(
      new Set(['attention+attention', 'mamba+mamba', 'mamba2+mamba2', 'gla+gla', 'hyena+hyena', 'mamba+attention']),
    );
    expect(plan.parameterKeys).toEqual(['model.layers', 'train.optimizer.lr', 'train.optimizer.weight_decay']);
    const first = parse(plan.trials[0]?.config ?? '');
    expect(first.task.name).toBe(`mad_${task.replaceAll('-', '_')}`);
    expect(first.train.batch_size).toBe(128);
  });

  it.each(TASKS)(
    'cpu-budget/sweep-%s.yaml keeps the task and narrows the protocol to its named cuts: 5 architectures × lr {1e-3, 5e-4}, weight decay 0, batch 32, 256 test examples',
    async (task) => {
      const plan = await planSweep(resolve(MAD_CONFIGS, 'cpu-budget', `sweep-${task}.yaml`));
      const configs = plan.trials.map((trial) => parse(trial.config));
      const cells = configs.map(
        (config) =>
          `${config.model.layers.map((layer: { block: string }) => layer.block).join('+')} ${config.train.optimizer.lr}`,
      );
      expect(cells).toEqual(
        ['attention+attention', 'mamba+mamba', 'mamba2+mamba2', 'gla+gla', 'mamba+attention'].flatMap(
          (architecture) => [`${architecture} 0.001`, `${architecture} 0.0005`],
        ),
      );
      for (const config of configs) {
        expect(config.task.name).toBe(`mad_${task.replaceAll('-', '_')}`);
        expect(config.task.test_examples).toBe(256);
        expect(config.train.batch_size).toBe(32);
        expect(config.train.optimizer.weight_decay).toBe(0);
        expect(config.model.d_model).toBe(128);
      }
    },
  );
});
