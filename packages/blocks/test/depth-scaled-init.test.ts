import {
  applyPlugin,
  capabilitiesOf,
  configDataSource,
  createContainer,
  LanguageModel,
  modelSchema,
  resolveLayers,
  SeededRandom,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { registerBuiltinBlocks } from '../src/index.js';

const variance = (values: Float32Array) => values.reduce((sum, v) => sum + v * v, 0) / values.length;

/** The output projections' variances of a 4-layer Mamba/RG-LRU model, with and without the switch. */
async function outputVariances(depthScaledInit: boolean | undefined) {
  const container = createContainer();
  await applyPlugin(container, registerBuiltinBlocks);
  const config = modelSchema.parse({
    vocab_size: 16,
    d_model: 32,
    layers: [
      { repeat: 2, pattern: [{ block: 'mamba' }, { block: 'rglru', d_rnn: 256, heads: 4, mlp: { expansion: 2 } }] },
    ],
    ...(depthScaledInit === undefined ? {} : { depth_scaled_init: depthScaledInit }),
  });
  const model = LanguageModel.build({
    container,
    config,
    layers: resolveLayers(config.layers, container, configDataSource('depth-scaled-init test')),
    rng: new SeededRandom(1),
    backend: capabilitiesOf('cpu'),
  });
  const of = (name: string) => variance(model.parameters.get(name)?.variable.dataSync() as Float32Array);
  const result = { mamba: of('layers.0.mixer.out_proj.weight'), rglru: of('layers.1.mixer.linear_out.weight') };
  model.dispose();
  return result;
}

describe('model.depth_scaled_init', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('is on by default and scales each output projection as its reference does', async () => {
    const plain = await outputVariances(false);
    const scaled = await outputVariances(undefined);
    expect(await outputVariances(true)).toEqual(scaled);
    // 4 layers, 2 with an MLP: 6 residual branches (mamba_ssm divides the weights by √6);
    // recurrentgemma's variance scale 2 / num_layers = 1/2.
    expect(scaled.mamba / plain.mamba).toBeCloseTo(1 / 6, 1);
    expect(scaled.rglru / plain.rglru).toBeCloseTo(1 / 2, 1);
    expect(plain.mamba * 64 * 3).toBeCloseTo(1, 1); // U(±1/√64): variance 1/(3·64)
    expect(plain.rglru * 256).toBeCloseTo(1, 1);
  });
});

/** The projections' variances of a 2-layer, 1-head attention model at d_model 64 (Zoology's baseline). */
async function attentionVariances(init: 'pytorch' | 'zoology' | undefined, depthScaledInit?: boolean) {
  const container = createContainer();
  await applyPlugin(container, registerBuiltinBlocks);
  const config = modelSchema.parse({
    vocab_size: 16,
    d_model: 64,
    layers: [{ repeat: 2, pattern: [{ block: 'attention', heads: 1, positions: 'none', ...(init ? { init } : {}) }] }],
    max_position_embeddings: 16,
    ...(depthScaledInit === undefined ? {} : { depth_scaled_init: depthScaledInit }),
  });
  const model = LanguageModel.build({
    container,
    config,
    layers: resolveLayers(config.layers, container, configDataSource('attention init test')),
    rng: new SeededRandom(2),
    backend: capabilitiesOf('cpu'),
  });
  const of = (name: string) => variance(model.parameters.get(name)?.variable.dataSync() as Float32Array);
  const result = {
    q: of('layers.1.mixer.q_proj.weight'),
    v: of('layers.0.mixer.v_proj.weight'),
    o: of('layers.1.mixer.o_proj.weight'),
  };
  model.dispose();
  return result;
}

describe("attention's init", () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it("is PyTorch's nn.Linear default unless set to Zoology's N(0, 0.02²), output scaled by √(2·layers)", async () => {
    const pytorch = await attentionVariances(undefined);
    expect(await attentionVariances('pytorch')).toEqual(pytorch);
    expect(pytorch.q * 64 * 3).toBeCloseTo(1, 1); // U(±1/√64)
    expect(pytorch.o * 64 * 3).toBeCloseTo(1, 1);
    const zoology = await attentionVariances('zoology');
    expect(Math.sqrt(zoology.q)).toBeCloseTo(0.02, 3);
    expect(Math.sqrt(zoology.v)).toBeCloseTo(0.02, 3);
    expect(Math.sqrt(zoology.o)).toBeCloseTo(0.02 / Math.sqrt(4), 3); // 2 layers
    // Without the model's depth, the output projection is scaled as one layer's.
    const unscaled = await attentionVariances('zoology', false);
    expect(Math.sqrt(unscaled.o)).toBeCloseTo(0.02 / Math.sqrt(2), 3);
  });
});
