import { readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { planSweep } from '../src/sweep/plan.js';

const MAD_CONFIGS = resolve(import.meta.dirname, '../../../configs/mad');
const TASKS = ['in-context-recall', 'fuzzy-recall', 'noisy-recall', 'selective-copying', 'compression', 'memorization'];

describe('configs/mad', () => {
  it('has one config and one protocol sweep per MAD task', () => {
    const files = readdirSync(MAD_CONFIGS).sort();
    expect(files).toEqual(
      ['base.yaml', ...TASKS.map((task) => `${task}.yaml`), ...TASKS.map((task) => `sweep-${task}.yaml`)].sort(),
    );
  });

  it.each(TASKS)("sweep-%s.yaml is MAD's grid: 4 architectures × 3 learning rates × 2 weight decays", async (task) => {
    const plan = await planSweep(resolve(MAD_CONFIGS, `sweep-${task}.yaml`));
    expect(plan.trials).toHaveLength(24);
    expect(plan.parameterKeys).toEqual(['model.layers', 'train.optimizer.lr', 'train.optimizer.weight_decay']);
    const first = parse(plan.trials[0]?.config ?? '');
    expect(first.task.name).toBe(`mad_${task.replaceAll('-', '_')}`);
    expect(first.train.batch_size).toBe(128);
  });
});
