import { capabilitiesOf, ParameterStore, SeededRandom } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveRnnWidth, rglruBlock } from '../src/rglru.js';

const softplus = (v: number) => (v > 30 ? v : Math.log1p(Math.exp(v)));

function build(dModel: number, rawConfig: Record<string, unknown>) {
  const store = new ParameterStore(new SeededRandom(7));
  rglruBlock.create(
    { dModel, params: store.root().scope('mixer'), rng: new SeededRandom(8), backend: capabilitiesOf('cpu') },
    rglruBlock.schema.parse(rawConfig),
  );
  const parameters = new Map(
    store
      .list()
      .map((p) => [
        p.name.replace('mixer.', ''),
        { values: p.variable.dataSync() as Float32Array, shape: p.variable.shape, decay: p.decay },
      ]),
  );
  store.dispose();
  return parameters;
}

describe('rglru initialisation (docs/design.md#rg-lru)', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('has recurrentgemma-style names and shapes; d_model 64 → d_rnn 85 in 5 heads', () => {
    const shapes = Object.fromEntries([...build(64, {})].map(([name, p]) => [name, p.shape]));
    expect(shapes).toEqual({
      'linear_y.weight': [85, 64],
      'linear_y.bias': [85],
      'linear_x.weight': [85, 64],
      'linear_x.bias': [85],
      'conv_1d.weight': [85, 1, 4],
      'conv_1d.bias': [85],
      'rg_lru.a_gate_weight': [5, 17, 17],
      'rg_lru.input_gate_weight': [5, 17, 17],
      'rg_lru.a_gate_bias': [5, 17],
      'rg_lru.input_gate_bias': [5, 17],
      'rg_lru.a_param': [85],
      'linear_out.weight': [64, 85],
      'linear_out.bias': [64],
    });
  });

  it('decays weights only, never biases or a_param', () => {
    const decayed = [...build(16, { d_rnn: 32, heads: 2 })].filter(([, p]) => p.decay).map(([name]) => name);
    expect(decayed.sort()).toEqual(
      [
        'conv_1d.weight',
        'linear_out.weight',
        'linear_x.weight',
        'linear_y.weight',
        'rg_lru.a_gate_weight',
        'rg_lru.input_gate_weight',
      ].sort(),
    );
  });

  it('draws a^c = exp(−c · softplus(a_param)) uniformly from [0.9, 0.999]', () => {
    const c = 8;
    const aParam = build(16, { d_rnn: 4000, heads: 400 }).get('rg_lru.a_param')!.values;
    const decays = [...aParam].map((v) => Math.exp(-c * softplus(v))).sort((x, y) => x - y);
    expect(decays[0]).toBeGreaterThanOrEqual(0.9 - 1e-6);
    expect(decays.at(-1)).toBeLessThanOrEqual(0.999 + 1e-6);
    // Kolmogorov–Smirnov distance to U(0.9, 0.999); the 1% critical value at n = 4000 is 0.026.
    const ks = Math.max(...decays.map((v, i) => Math.abs((v - 0.9) / 0.099 - (i + 0.5) / decays.length)));
    expect(ks).toBeLessThan(0.026);
  });

  it('honours a_min, a_max and c', () => {
    const aParam = build(16, { d_rnn: 500, heads: 50, c: 4, a_min: 0.5, a_max: 0.6 }).get('rg_lru.a_param')!.values;
    const decays = [...aParam].map((v) => Math.exp(-4 * softplus(v)));
    expect(Math.min(...decays)).toBeGreaterThanOrEqual(0.5 - 1e-6);
    expect(Math.max(...decays)).toBeLessThanOrEqual(0.6 + 1e-6);
    expect(Math.max(...decays) - Math.min(...decays)).toBeGreaterThan(0.09);
  });

  it('starts gate and projection biases at 0 and gate weights at N(0, 1/block width)', () => {
    const parameters = build(16, { d_rnn: 400, heads: 4 });
    for (const name of ['linear_y.bias', 'linear_x.bias', 'conv_1d.bias', 'rg_lru.a_gate_bias', 'linear_out.bias']) {
      expect(
        [...parameters.get(name)!.values].every((v) => v === 0),
        name,
      ).toBe(true);
    }
    const gate = [...parameters.get('rg_lru.a_gate_weight')!.values];
    const variance = gate.reduce((sum, v) => sum + v * v, 0) / gate.length;
    expect(variance).toBeGreaterThan(0.9 / 100);
    expect(variance).toBeLessThan(1.1 / 100);
  });

  it('picks heads and checks that they divide d_rnn', () => {
    const widths = (dModel: number, raw: Record<string, unknown>) =>
      resolveRnnWidth(rglruBlock.schema.parse(raw), dModel);
    expect(widths(64, {})).toEqual({ dRnn: 85, heads: 5 });
    expect(widths(16, {})).toEqual({ dRnn: 21, heads: 1 });
    expect(widths(96, {})).toEqual({ dRnn: 128, heads: 8 });
    expect(widths(64, { heads: 17 })).toEqual({ dRnn: 85, heads: 17 });
    expect(() => widths(64, { heads: 4 })).toThrow(/heads \(4\) must divide d_rnn \(85\)/);
    expect(rglruBlock.schema.safeParse({ d_rnn: 30, heads: 4 }).success).toBe(false);
    expect(rglruBlock.schema.safeParse({ a_min: 0.99, a_max: 0.9 }).success).toBe(false);
  });
});
