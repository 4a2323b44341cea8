import { describe, expect, it } from 'vitest';
import { canonicalJson, configHash, flattenForParams, truncateParam } from '../../src/config/flatten.js';

const resolved = {
  name: 'exp',
  model: {
    d_model: 16,
    layers: [{ repeat: 2, pattern: [{ block: 'mamba' }, { block: 'swa', window: 4, mlp: { expansion: 3 } }] }],
  },
  train: { optimizer: { lr: 0.001, betas: [0.9, 0.98] }, grad_clip: null },
  plugins: [],
  sweep: { parameters: { 'model.d_model': [8, 16] } },
};

describe('flattenForParams', () => {
  it('uses dotted keys, JSON for lists of scalars and indices for lists of maps', () => {
    expect(flattenForParams(resolved)).toEqual({
      name: 'exp',
      'model.d_model': '16',
      'model.layers.0.repeat': '2',
      'model.layers.0.pattern.0.block': 'mamba',
      'model.layers.0.pattern.1.block': 'swa',
      'model.layers.0.pattern.1.window': '4',
      'model.layers.0.pattern.1.mlp.expansion': '3',
      'train.optimizer.lr': '0.001',
      'train.optimizer.betas': '[0.9,0.98]',
      'train.grad_clip': 'null',
      plugins: '[]',
      'sweep.parameters.model.d_model': '[8,16]',
    });
  });

  it("truncates values to MLflow's 6000 characters without splitting a character", () => {
    const long = flattenForParams({ note: 'x'.repeat(7000) }).note ?? '';
    expect(long.length).toBe(6000);
    expect(long.endsWith('...[truncated]')).toBe(true);
    const emoji = '😀'.repeat(4000); // 8000 UTF-16 units
    const cut = truncateParam(emoji);
    expect(cut.length).toBeLessThanOrEqual(6000);
    expect(cut.replace('...[truncated]', '')).toMatch(/^(😀)+$/u);
    expect(truncateParam('short')).toBe('short');
  });
});

describe('configHash', () => {
  it('is 16 hex digits, stable under key order', () => {
    const reordered = {
      sweep: { parameters: { 'model.d_model': [8, 16] } },
      plugins: [],
      train: { grad_clip: null, optimizer: { betas: [0.9, 0.98], lr: 0.001 } },
      model: {
        layers: [{ pattern: [{ block: 'mamba' }, { mlp: { expansion: 3 }, window: 4, block: 'swa' }], repeat: 2 }],
        d_model: 16,
      },
      name: 'exp',
    };
    expect(configHash(resolved)).toMatch(/^[0-9a-f]{16}$/);
    expect(configHash(reordered)).toBe(configHash(resolved));
    expect(canonicalJson({ b: 1, a: { d: 2, c: 3 } })).toBe('{"a":{"c":3,"d":2},"b":1}');
  });

  it('changes with any value, and with list order', () => {
    const changed = structuredClone(resolved);
    changed.train.optimizer.lr = 0.002;
    expect(configHash(changed)).not.toBe(configHash(resolved));
    const swapped = structuredClone(resolved);
    swapped.train.optimizer.betas = [0.98, 0.9];
    expect(configHash(swapped)).not.toBe(configHash(resolved));
  });
});
