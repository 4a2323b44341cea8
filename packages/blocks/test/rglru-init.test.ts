import { capabilitiesOf, type ModelDepth, ParameterStore, SeededRandom } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { resolveRnnWidth, rglruBlock } from '../src/rglru.js';

const softplus = (v: number) => (v > 30 ? v : Math.log1p(Math.exp(v)));

function build(dModel: number, rawConfig: Record<string, unknown>, depth?: ModelDepth) {
  const store = new ParameterStore(new SeededRandom(7));
  rglruBlock.create(
    {
      dModel,
      params: store.root().scope('mixer'),
      rng: new SeededRandom(8),
      backend: capabilitiesOf('cpu'),
      depth,
    },
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

  it('a_init griffin_paper: draws a^c = exp(−c · softplus(a_param)) uniformly from [0.9, 0.999]', () => {
    const c = 8;
    const aParam = build(16, { d_rnn: 4000, heads: 400, a_init: 'griffin_paper' }).get('rg_lru.a_param')!.values;
    const decays = [...aParam].map((v) => Math.exp(-c * softplus(v))).sort((x, y) => x - y);
    expect(decays[0]).toBeGreaterThanOrEqual(0.9 - 1e-6);
    expect(decays.at(-1)).toBeLessThanOrEqual(0.999 + 1e-6);
    // Kolmogorov–Smirnov distance to U(0.9, 0.999); the 1% critical value at n = 4000 is 0.026.
    const ks = Math.max(...decays.map((v, i) => Math.abs((v - 0.9) / 0.099 - (i + 0.5) / decays.length)));
    expect(ks).toBeLessThan(0.026);
  });

  it('a_init recurrentgemma (the default): draws a² = exp(−2 · softplus(a_param)) uniformly from [0.81, 0.998]', () => {
    const aParam = build(16, { d_rnn: 4000, heads: 400 }).get('rg_lru.a_param')!.values;
    const squares = [...aParam].map((v) => Math.exp(-2 * softplus(v))).sort((x, y) => x - y);
    const [low, high] = [0.9 ** 2, 0.999 ** 2];
    expect(squares[0]).toBeGreaterThanOrEqual(low - 1e-6);
    expect(squares.at(-1)).toBeLessThanOrEqual(high + 1e-6);
    const ks = Math.max(...squares.map((v, i) => Math.abs((v - low) / (high - low) - (i + 0.5) / squares.length)));
    expect(ks).toBeLessThan(0.026);
  });

  it('gives the reference init a median half-life of ~3.4 tokens at a half-open gate, the paper init ~27', () => {
    // At init the gate r_t = σ(≈0) ≈ 1/2, so a_t = a^(c/2) and h halves in ln 2 / ((c/2)·(−ln a)) tokens.
    const medianHalfLife = (aInit: string) => {
      const aParam = build(16, { d_rnn: 4000, heads: 400, a_init: aInit }).get('rg_lru.a_param')!.values;
      const halfLives = [...aParam].map((v) => Math.LN2 / (4 * softplus(v))).sort((x, y) => x - y);
      return halfLives[halfLives.length / 2] as number;
    };
    // Closed forms: a² median 0.904 → ln 2 / (4 · ½ ln(1/0.904)) = 3.43; a^8 median 0.9495 → 26.7.
    // A sample median of 4000 draws is within ~2% of the population's (its standard error).
    const reference = medianHalfLife('recurrentgemma');
    const paper = medianHalfLife('griffin_paper');
    expect(Math.abs(reference / 3.43 - 1)).toBeLessThan(0.05);
    expect(Math.abs(paper / 26.7 - 1)).toBeLessThan(0.05);
  });

  it('scales linear_out to variance 2/(num_layers · d_rnn) in a depth-scaled model, 1/d_rnn alone', () => {
    const variance = (values: Float32Array) => values.reduce((sum, v) => sum + v * v, 0) / values.length;
    const alone = variance(build(64, { d_rnn: 512, heads: 8 }).get('linear_out.weight')!.values);
    const inModel = variance(
      build(64, { d_rnn: 512, heads: 8 }, { layers: 8, residualBranches: 16 }).get('linear_out.weight')!.values,
    );
    expect(alone * 512).toBeGreaterThan(0.95);
    expect(alone * 512).toBeLessThan(1.05);
    expect(inModel * 512 * 8).toBeGreaterThan(1.9);
    expect(inModel * 512 * 8).toBeLessThan(2.1);
  });

  it('honours a_min, a_max and c', () => {
    const aParam = build(16, { d_rnn: 500, heads: 50, c: 4, a_min: 0.5, a_max: 0.6, a_init: 'griffin_paper' }).get(
      'rg_lru.a_param',
    )!.values;
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
