import { InterleaveError, selectBackend } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { hyenaBlock, hyenaSchema } from '../src/hyena.js';
import { buildBlockForTest } from '../src/testing/index.js';

type Params = Record<string, { values: number[]; shape: number[] }>;

function readParams(block: ReturnType<typeof buildBlockForTest>): Params {
  const params: Params = {};
  for (const { name, variable } of block.store.list()) {
    params[name.replace(/^mixer\./, '')] = { values: Array.from(variable.dataSync()), shape: variable.shape };
  }
  return params;
}

const linspace = (start: number, end: number, steps: number) =>
  Array.from({ length: steps }, (_, i) => (steps === 1 ? start : start + ((end - start) * i) / (steps - 1)));

/** y = W x + b for W in PyTorch's [out, in] layout. */
function dense(p: Params, name: string, x: number[], withBias = true): number[] {
  const { values, shape } = p[`${name}.weight`] as { values: number[]; shape: number[] };
  const [outFeatures, inFeatures] = shape as [number, number];
  const bias = withBias ? (p[`${name}.bias`] as { values: number[] }).values : undefined;
  return Array.from({ length: outFeatures }, (_, o) => {
    let sum = bias ? (bias[o] as number) : 0;
    for (let i = 0; i < inFeatures; i++) sum += (values[o * inFeatures + i] as number) * (x[i] as number);
    return sum;
  });
}

interface ReferenceConfig {
  order: number;
  embDim: number;
  innerLayers: number;
  kernel: number;
  maxLen: number;
  fast: number;
  slow: number;
  target: number;
  shift: number;
}

/**
 * safari's HyenaOperator.forward (one head, inner_factor 1, no dropout), re-derived from the
 * reference in float64 from the block's own parameters: an independent check of the gating
 * order, the channel layouts and the implicit filter.
 */
function safariReference(p: Params, cfg: ReferenceConfig, x: number[][][], dModel: number): number[][][] {
  const { order, embDim, innerLayers, kernel, maxLen } = cfg;
  const length = (x[0] as number[][]).length;
  const filterChannels = dModel * (order - 1);
  // Implicit filter k [L, (N−1)·D].
  const bands = (embDim - 1) / 2;
  const freqs = linspace(1e-4, bands - 1, bands);
  const tLin = linspace(0, 1, maxLen);
  const deltas = linspace(Math.log(cfg.target) / cfg.slow, Math.log(cfg.target) / cfg.fast, filterChannels);
  const sinFreq = (p['filter_fn.implicit_filter.1.freq'] as { values: number[] }).values;
  const sin = (v: number[]) => v.map((value, i) => Math.sin((sinFreq[i] as number) * value));
  const k = Array.from({ length }, (_, t) => {
    const w = (2 * Math.PI * t) / maxLen;
    let h = [tLin[t] as number, ...freqs.map((f) => Math.cos(f * w)), ...freqs.map((f) => -Math.sin(f * w))];
    h = sin(dense(p, 'filter_fn.implicit_filter.0', h));
    for (let i = 0; i < innerLayers; i++) h = sin(dense(p, `filter_fn.implicit_filter.${2 * i + 2}`, h));
    h = dense(p, `filter_fn.implicit_filter.${2 * innerLayers + 2}`, h, false);
    return h.map((value, c) => value * (Math.exp(-(tLin[t] as number) * Math.abs(deltas[c] as number)) + cfg.shift));
  });
  const filterBias = (p['filter_fn.bias'] as { values: number[] }).values;
  const shortW = (p['short_filter.weight'] as { values: number[] }).values;
  const shortB = (p['short_filter.bias'] as { values: number[] }).values;
  return x.map((sequence) => {
    const u = sequence.map((token) => dense(p, 'in_proj', token));
    const uc = u.map((row, t) =>
      row.map((_, j) => {
        let sum = shortB[j] as number;
        for (let i = 0; i < kernel; i++) {
          const s = t - (kernel - 1) + i;
          if (s >= 0) sum += (shortW[j * kernel + i] as number) * ((u[s] as number[])[j] as number);
        }
        return sum;
      }),
    );
    // `*x, v = uc.split(d_model)`: x[0..N−1] then v.
    const chunk = (n: number) => uc.map((row) => row.slice(n * dModel, (n + 1) * dModel));
    let v = chunk(order);
    const xs = Array.from({ length: order }, (_, n) => chunk(n));
    // `for o, x_i in enumerate(reversed(x[1:]))`: gate, then convolve with k[o] plus the bias term.
    for (let o = 0; o < order - 1; o++) {
      const gate = xs[order - 1 - o] as number[][];
      const gated = v.map((row, t) => row.map((value, c) => value * ((gate[t] as number[])[c] as number)));
      v = gated.map((row, t) =>
        row.map((value, c) => {
          const channel = c * (order - 1) + o; // '(v o)' layout
          let sum = value * (filterBias[channel] as number);
          for (let s = 0; s <= t; s++)
            sum += ((k[t - s] as number[])[channel] as number) * ((gated[s] as number[])[c] as number);
          return sum;
        }),
      );
    }
    const first = xs[0] as number[][];
    return v.map((row, t) =>
      dense(
        p,
        'out_proj',
        row.map((value, c) => value * ((first[t] as number[])[c] as number)),
      ),
    );
  });
}

describe('hyena block', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('has safari’s parameter names, shapes and init', () => {
    const block = buildBlockForTest(hyenaBlock, { order: 3, filter_order: 16, emb_dim: 5, sin_freq: 2 }, { dModel: 8 });
    const entries = block.store.list().map(({ name, variable, decay }) => [name, variable.shape, decay]);
    expect(entries).toEqual([
      ['mixer.in_proj.weight', [32, 8], true],
      ['mixer.in_proj.bias', [32], false],
      ['mixer.short_filter.weight', [32, 1, 3], true],
      ['mixer.short_filter.bias', [32], false],
      ['mixer.filter_fn.bias', [16], false],
      ['mixer.filter_fn.implicit_filter.0.weight', [16, 5], false],
      ['mixer.filter_fn.implicit_filter.0.bias', [16], false],
      ['mixer.filter_fn.implicit_filter.1.freq', [1, 16], false],
      ['mixer.filter_fn.implicit_filter.2.weight', [16, 16], false],
      ['mixer.filter_fn.implicit_filter.2.bias', [16], false],
      ['mixer.filter_fn.implicit_filter.4.weight', [16, 16], false],
      ['mixer.filter_fn.implicit_filter.4.bias', [16], false],
      ['mixer.filter_fn.implicit_filter.6.weight', [16, 16], false],
      ['mixer.out_proj.weight', [8, 8], true],
      ['mixer.out_proj.bias', [8], false],
    ]);
    const p = readParams(block);
    expect(new Set(p['filter_fn.implicit_filter.1.freq']?.values)).toEqual(new Set([2]));
    // PyTorch's default Linear/Conv1d init: U(±1/√fan_in).
    const bound = (name: string) => Math.max(...(p[name]?.values ?? []).map(Math.abs));
    expect(bound('in_proj.weight')).toBeLessThanOrEqual(1 / Math.sqrt(8));
    expect(bound('short_filter.weight')).toBeLessThanOrEqual(1 / Math.sqrt(3));
    expect(bound('filter_fn.implicit_filter.0.weight')).toBeLessThanOrEqual(1 / Math.sqrt(5));
    // filter_fn.bias ~ N(0, 1): wider than any of those.
    expect(bound('filter_fn.bias')).toBeGreaterThan(0.6);
    block.dispose();
  });

  it.each([
    ['order 2, defaults', { max_len: 20 }],
    [
      'order 3, interleaved filter channels',
      { order: 3, filter_order: 8, emb_dim: 5, num_inner_mlps: 1, max_len: 12, shift: 0.2 },
    ],
  ])('forward matches safari’s operator re-derived in float64 (%s)', async (_label, raw) => {
    const dModel = 4;
    const config = hyenaSchema.parse(raw);
    const block = buildBlockForTest(hyenaBlock, raw, { dModel });
    const x = tf.tidy(() => tf.randomNormal([2, 9, dModel], 0, 1, 'float32', 7)) as tf.Tensor3D;
    const expected = safariReference(
      readParams(block),
      {
        order: config.order,
        embDim: config.emb_dim,
        innerLayers: config.num_inner_mlps,
        kernel: config.short_filter_order,
        maxLen: config.max_len,
        fast: config.fast_decay_pct,
        slow: config.slow_decay_pct,
        target: config.target,
        shift: config.shift,
      },
      x.arraySync(),
      dModel,
    );
    const y = block.mixer.forward(x);
    const diff = tf.tidy(() => tf.sub(y, tf.tensor3d(expected)).abs().max().dataSync()[0] as number);
    expect(diff).toBeLessThan(1e-4);
    tf.dispose([x, y]);
    block.dispose();
  });

  it('validates its config', () => {
    expect(hyenaSchema.parse({})).toMatchObject({
      order: 2,
      filter_order: 64,
      emb_dim: 3,
      num_inner_mlps: 2,
      short_filter_order: 3,
      max_len: 2048,
      sin_freq: 1,
      fast_decay_pct: 0.3,
      slow_decay_pct: 1.5,
      target: 1e-2,
      shift: 0,
    });
    expect(hyenaSchema.safeParse({ emb_dim: 4 }).success).toBe(false);
    expect(hyenaSchema.safeParse({ order: 1 }).success).toBe(false);
    expect(hyenaSchema.safeParse({ fast_decay_pct: 2 }).success).toBe(false);
    expect(hyenaSchema.safeParse({ heads: 2 }).success).toBe(false);
  });

  it('refuses sequences past max_len, in forward and in step', () => {
    const block = buildBlockForTest(hyenaBlock, { filter_order: 4, max_len: 3 }, { dModel: 4 });
    const x = tf.zeros([1, 4, 4]) as tf.Tensor3D;
    expect(() => block.mixer.forward(x)).toThrow(InterleaveError);
    let state = block.mixer.initState(1);
    const token = tf.zeros([1, 4]) as tf.Tensor2D;
    for (let t = 0; t < 3; t++) {
      const result = block.mixer.step(token, state);
      tf.dispose([result.y, state as unknown as tf.TensorContainer]);
      state = result.state;
    }
    expect(() => block.mixer.step(token, state)).toThrow(/max_len 3/);
    tf.dispose([x, token, state as unknown as tf.TensorContainer]);
    block.dispose();
  });
});
