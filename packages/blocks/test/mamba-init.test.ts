import { capabilitiesOf, ParameterStore, SeededRandom } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { mambaBlock } from '../src/mamba.js';

const softplus = (v: number) => Math.log1p(Math.exp(v));

describe('mamba initialisation (docs/design.md#mamba)', () => {
  const dModel = 64;
  let parameters: Map<string, { values: Float32Array; shape: number[]; decay: boolean }>;

  beforeAll(async () => {
    await tf.setBackend('cpu');
    const store = new ParameterStore(new SeededRandom(7));
    const config = mambaBlock.schema.parse({});
    mambaBlock.create(
      { dModel, params: store.root().scope('mixer'), rng: new SeededRandom(8), backend: capabilitiesOf('cpu') },
      config,
    );
    parameters = new Map(
      store
        .list()
        .map((p) => [
          p.name.replace('mixer.', ''),
          { values: p.variable.dataSync() as Float32Array, shape: p.variable.shape, decay: p.decay },
        ]),
    );
    store.dispose();
  });

  it('has the reference parameter names and shapes', () => {
    const shapes = Object.fromEntries([...parameters].map(([name, p]) => [name, p.shape]));
    const dInner = 2 * dModel;
    const dtRank = Math.ceil(dModel / 16);
    expect(shapes).toEqual({
      'in_proj.weight': [2 * dInner, dModel],
      'conv1d.weight': [dInner, 1, 4],
      'conv1d.bias': [dInner],
      'x_proj.weight': [dtRank + 32, dInner],
      'dt_proj.weight': [dInner, dtRank],
      'dt_proj.bias': [dInner],
      A_log: [dInner, 16],
      D: [dInner],
      'out_proj.weight': [dModel, dInner],
    });
  });

  it('sets A_log[i, n] = log(n + 1) and D = 1, both without weight decay', () => {
    const aLog = parameters.get('A_log')!;
    for (let i = 0; i < 128; i++) {
      for (let n = 0; n < 16; n++) expect(aLog.values[i * 16 + n]).toBeCloseTo(Math.log(n + 1), 6);
    }
    expect([...parameters.get('D')!.values].every((v) => v === 1)).toBe(true);
    expect(aLog.decay).toBe(false);
    expect(parameters.get('D')!.decay).toBe(false);
    expect(parameters.get('in_proj.weight')!.decay).toBe(true);
    expect(parameters.get('dt_proj.bias')!.decay).toBe(false);
  });

  it('draws dt = softplus(dt_proj.bias) log-uniformly in [dt_min, dt_max]', () => {
    const dt = [...parameters.get('dt_proj.bias')!.values].map(softplus);
    expect(Math.min(...dt)).toBeGreaterThanOrEqual(0.001 * 0.999);
    expect(Math.max(...dt)).toBeLessThanOrEqual(0.1 * 1.001);
    // log dt ~ U(log 0.001, log 0.1): mean log(0.01), std (log 100)/sqrt(12).
    const logs = dt.map(Math.log);
    const mean = logs.reduce((a, b) => a + b, 0) / logs.length;
    const std = Math.sqrt(logs.reduce((a, b) => a + (b - mean) ** 2, 0) / logs.length);
    expect(mean).toBeCloseTo(Math.log(0.01), 0);
    expect(Math.abs(mean - Math.log(0.01))).toBeLessThan(0.25);
    expect(std).toBeGreaterThan((Math.log(100) / Math.sqrt(12)) * 0.8);
    expect(std).toBeLessThan((Math.log(100) / Math.sqrt(12)) * 1.2);
  });

  it('draws dt_proj.weight from U(-dt_rank^-0.5, dt_rank^-0.5)', () => {
    const w = [...parameters.get('dt_proj.weight')!.values];
    const bound = Math.ceil(dModel / 16) ** -0.5;
    expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(bound);
    const variance = w.reduce((a, b) => a + b * b, 0) / w.length;
    expect(variance).toBeGreaterThan((bound ** 2 / 3) * 0.75);
    expect(variance).toBeLessThan((bound ** 2 / 3) * 1.25);
  });

  it('draws out_proj from U(±1/√d_inner), divided by √(residual branches) in a depth-scaled model', () => {
    const dInner = 2 * dModel;
    const bound = 1 / Math.sqrt(dInner);
    const plain = [...parameters.get('out_proj.weight')!.values].map(Math.abs);
    expect(Math.max(...plain)).toBeLessThanOrEqual(bound);
    expect(Math.max(...plain)).toBeGreaterThan(0.98 * bound);
    const store = new ParameterStore(new SeededRandom(7));
    mambaBlock.create(
      {
        dModel,
        params: store.root().scope('mixer'),
        rng: new SeededRandom(8),
        backend: capabilitiesOf('cpu'),
        depth: { layers: 4, residualBranches: 4 },
      },
      mambaBlock.schema.parse({}),
    );
    const scaled = [...(store.get('mixer.out_proj.weight')!.variable.dataSync() as Float32Array)].map(Math.abs);
    store.dispose();
    // mamba_ssm: kaiming_uniform_(a=√5) = U(±1/√fan_in), then p /= √(n_residuals_per_layer · n_layer) = √4.
    expect(Math.max(...scaled)).toBeLessThanOrEqual(bound / 2);
    expect(Math.max(...scaled)).toBeGreaterThan(0.98 * (bound / 2));
  });
});
