import { capabilitiesOf, ParameterStore, SeededRandom } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rglruBlock } from '../src/rglru.js';

/** The two private formulations of the block-diagonal gates, reached for this test only. */
interface GateForms {
  denseGates(x: tf.Tensor): tf.Tensor[];
  perHeadGates(x: tf.Tensor): tf.Tensor[];
}

describe('rglru block-diagonal gates', () => {
  const [heads, blockWidth, rows] = [3, 4, 5];
  const dRnn = heads * blockWidth;
  let store: ParameterStore;
  let mixer: GateForms;

  beforeAll(async () => {
    await tf.setBackend('cpu');
    store = new ParameterStore(new SeededRandom(3));
    mixer = rglruBlock.create(
      { dModel: 8, params: store.root().scope('mixer'), rng: new SeededRandom(4), backend: capabilitiesOf('cpu') },
      rglruBlock.schema.parse({ d_rnn: dRnn, heads }),
    ) as unknown as GateForms;
    // Non-zero biases, so that their layout is checked too.
    for (const { name, variable } of store.list()) {
      if (name.endsWith('gate_bias')) variable.assign(tf.randomNormal(variable.shape, 0, 1, 'float32', 5));
    }
  });
  afterAll(() => store.dispose());

  it('dense and per-head forms both compute y[h·bw + j] = Σ_i x[h·bw + i] · W[h, i, j] + b[h, j]', () => {
    const parameter = (name: string) => store.list().find((p) => p.name === `mixer.rg_lru.${name}`)!.variable;
    const x = tf.randomNormal([rows, dRnn], 0, 1, 'float32', 6);
    const xs = x.arraySync() as number[][];
    const expected = ['a_gate', 'input_gate'].map((gate) => {
      const w = parameter(`${gate}_weight`).arraySync() as number[][][];
      const b = parameter(`${gate}_bias`).arraySync() as number[][];
      return xs.map((row) =>
        Array.from({ length: dRnn }, (_, column) => {
          const [h, j] = [Math.floor(column / blockWidth), column % blockWidth];
          let sum = b[h]![j]!;
          for (let i = 0; i < blockWidth; i++) sum += row[h * blockWidth + i]! * w[h]![i]![j]!;
          return sum;
        }),
      );
    });
    for (const form of ['denseGates', 'perHeadGates'] as const) {
      const gates = tf.tidy(() => mixer[form](x).map((g) => g.reshape([rows, dRnn]).arraySync() as number[][]));
      gates.forEach((gate, index) => {
        const diff = Math.max(...gate.flat().map((v, k) => Math.abs(v - expected[index]!.flat()[k]!)));
        expect(diff, `${form} gate ${index}`).toBeLessThan(1e-5);
      });
    }
    x.dispose();
  });
});
