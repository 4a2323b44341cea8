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
