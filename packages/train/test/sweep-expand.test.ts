import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadExperimentConfig } from '../src/config/experiment-config.js';
import { expandSweep } from '../src/sweep/expand.js';
import { resultsCsv } from '../src/sweep/results.js';
import { type SweepConfig, sweepSchema } from '../src/sweep/sweep-schema.js';
import { TINY_GRID, workspace } from './sweep-support.js';

const sweep = (value: unknown): SweepConfig => sweepSchema.parse(value);

describe('expandSweep', () => {
  it('grid: every combination, the first parameter varying slowest', () => {
    const points = expandSweep(sweep({ method: 'grid', parameters: { a: [1, 2], b: ['x', 'y', 'z'] } }));
    expect(points.map((point) => point.values)).toEqual([
      { a: 1, b: 'x' },
      { a: 1, b: 'y' },
      { a: 1, b: 'z' },
      { a: 2, b: 'x' },
      { a: 2, b: 'y' },
      { a: 2, b: 'z' },
    ]);
    expect(points.map((point) => point.index)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(points[4]?.listPositions).toEqual({ a: 1, b: 1 });
  });

  it('grid values may be lists and maps (a whole layer stack)', () => {
    const stacks = [[{ block: 'mamba' }], [{ block: 'swa', window: 8 }]];
    const points = expandSweep(sweep({ parameters: { 'model.layers': stacks } }));
    expect(points.map((point) => point.values['model.layers'])).toEqual(stacks);
  });

  it('zip: the i-th value of every list together', () => {
    const points = expandSweep(sweep({ method: 'zip', parameters: { a: [1, 2, 3], b: [10, 20, 30] } }));
    expect(points.map((point) => point.values)).toEqual([
      { a: 1, b: 10 },
      { a: 2, b: 20 },
      { a: 3, b: 30 },
    ]);
  });

  it('random: seeded, reproducible draws from lists and distributions, inside their ranges', () => {
    const spec = sweep({
      method: 'random',
      trials: 200,
      seed: 7,
      parameters: {
        lr: { log_uniform: [1e-4, 1e-2] },
        dropout: { uniform: [0.1, 0.3] },
        width: { choice: [8, 16, 32] },
        depth: [1, 2],
      },
    });
    const points = expandSweep(spec);
    expect(points).toHaveLength(200);
    expect(expandSweep(spec)).toEqual(points);
    const column = (key: string) => points.map((point) => point.values[key] as number);
    for (const lr of column('lr')) expect(lr >= 1e-4 && lr <= 1e-2).toBe(true);
    for (const dropout of column('dropout')) expect(dropout >= 0.1 && dropout <= 0.3).toBe(true);
    expect(new Set(column('width'))).toEqual(new Set([8, 16, 32]));
    expect(new Set(column('depth'))).toEqual(new Set([1, 2]));
    // Log-uniform: about half the draws fall below the geometric midpoint 1e-3.
    const below = column('lr').filter((lr) => lr < 1e-3).length;
    expect(below).toBeGreaterThan(70);
    expect(below).toBeLessThan(130);
    // Draws are rounded to 6 significant digits.
    expect(String(column('lr')[0]).replace(/^0\.0*|e.*$|\./g, '').length).toBeLessThanOrEqual(6);
  });

  it('random: another seed gives other draws; adding a parameter leaves the others unchanged', () => {
    const base = { method: 'random', trials: 5, parameters: { lr: { uniform: [0, 1] } } } as const;
    const first = expandSweep(sweep({ ...base, seed: 1 })).map((point) => point.values.lr);
    const other = expandSweep(sweep({ ...base, seed: 2 })).map((point) => point.values.lr);
    expect(other).not.toEqual(first);
    const wider = expandSweep(sweep({ ...base, seed: 1, parameters: { ...base.parameters, width: [8, 16] } }));
    expect(wider.map((point) => point.values.lr)).toEqual(first);
  });
});

describe('the sweep: section', () => {
  async function sweepError(section: string): Promise<string> {
    const dir = workspace({});
    const file = join(dir, 'sweep.yaml');
    writeFileSync(file, TINY_GRID.slice(0, TINY_GRID.indexOf('sweep:')) + section);
    try {
      await loadExperimentConfig(file);
    } catch (error) {
      return (error as Error).message.replace(file, 'sweep.yaml');
    }
    throw new Error('the config loaded');
  }

  it('locates bad distributions by file:line:column', async () => {
    expect(
      await sweepError('sweep:\n  method: random\n  trials: 4\n  parameters:\n    lr: { log_uniform: [0, 1] }\n'),
    ).toBe(
      'sweep.yaml:20:24: sweep.parameters.lr.log_uniform: a log_uniform range must be positive: [low, high] with 0 < low < high',
    );
    expect(
      await sweepError('sweep:\n  method: random\n  trials: 4\n  parameters:\n    lr: { unifrom: [0, 1] }\n'),
    ).toBe("sweep.yaml:20:11: sweep.parameters.lr.unifrom: unknown key 'unifrom'; did you mean 'uniform'?");
    expect(
      await sweepError('sweep:\n  method: random\n  trials: 4\n  parameters:\n    lr: { uniform: [2, 1] }\n'),
    ).toBe('sweep.yaml:20:20: sweep.parameters.lr.uniform: a uniform range is [low, high] with low < high');
  });

  it('keeps distributions and trials: to method random', async () => {
    expect(await sweepError('sweep:\n  method: grid\n  parameters:\n    lr: { uniform: [0, 1] }\n')).toBe(
      "sweep.yaml:19:9: sweep.parameters.lr: method 'grid' takes a list of values; distributions (uniform, log_uniform, choice) need method 'random'",
    );
    expect(await sweepError('sweep:\n  method: grid\n  trials: 3\n  parameters:\n    lr: [1, 2]\n')).toBe(
      "sweep.yaml:18:11: sweep.trials: 'trials' is for method 'random'; method 'grid' runs every listed value",
    );
  });
});

describe('results.csv', () => {
  it('quotes what CSV needs quoted and leaves missing values empty', () => {
    const plan = { parameterKeys: ['model.layers', 'lr'] } as never;
    const csv = resultsCsv(plan, [
      {
        index: 1,
        trialId: 'abc',
        params: { 'model.layers': [{ block: 'swa' }], lr: 0.001 },
        status: 'FAILED',
        attempts: 2,
        error: 'loss became NaN, "really"',
      },
    ]);
    expect(csv.split('\n')[1]).toBe('1,"[{""block"":""swa""}]",0.001,FAILED,,,,,,2,abc,"loss became NaN, ""really"""');
  });
});
