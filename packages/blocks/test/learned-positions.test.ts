import {
  applyPlugin,
  capabilitiesOf,
  configDataSource,
  createContainer,
  InterleaveError,
  LanguageModel,
  type ModelState,
  modelSchema,
  resolveLayers,
  SeededRandom,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { fullAttentionBlock, registerBuiltinBlocks } from '../src/index.js';
import { runBlockContract } from '../src/testing/index.js';

// Attention without RoPE (Zoology's baseline puts its positions in the embeddings) keeps the contract.
runBlockContract(fullAttentionBlock, { heads: 1, positions: 'none' }, { backends: ['cpu'] });

/** Zoology's attention baseline: learned absolute positions, 1-head attention without RoPE. */
async function zoologyAttention(maxPositions: number | undefined) {
  const container = createContainer();
  await applyPlugin(container, registerBuiltinBlocks);
  const config = modelSchema.parse({
    vocab_size: 12,
    d_model: 8,
    layers: [{ repeat: 2, pattern: [{ block: 'attention', heads: 1, positions: 'none' }] }],
    ...(maxPositions === undefined ? {} : { max_position_embeddings: maxPositions }),
  });
  return LanguageModel.build({
    container,
    config,
    layers: resolveLayers(config.layers, container, configDataSource('learned-positions test')),
    rng: new SeededRandom(5),
    backend: capabilitiesOf('cpu'),
  });
}

describe('model.max_position_embeddings (learned absolute positions)', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('adds a [max, D] position table, and step over a sequence reproduces forward', async () => {
    const model = await zoologyAttention(6);
    expect(model.parameters.get('position_embeddings.weight')?.variable.shape).toEqual([6, 8]);
    const tokens = [3, 1, 4, 1, 5, 9];
    const input = tf.tensor2d([tokens], [1, 6], 'int32');
    const forward = model.forward(input);
    let state: ModelState = model.initState(1);
    for (const [t, token] of tokens.entries()) {
      const tokenTensor = tf.tensor1d([token], 'int32');
      const out = model.step(tokenTensor, state);
      const expected = forward.slice([0, t, 0], [1, 1, 12]).reshape([1, 12]);
      const difference = tf.max(tf.abs(out.logits.sub(expected))).dataSync()[0] as number;
      expect(difference).toBeLessThan(1e-4);
      tf.dispose([tokenTensor, out.logits, expected, state as unknown as tf.TensorContainer]);
      state = out.state;
    }
    expect(state.position).toBe(6);
    // One more token is past the table: one clear error, not a slice failure.
    const extra = tf.tensor1d([2], 'int32');
    expect(() => model.step(extra, state)).toThrow(InterleaveError);
    expect(() => model.step(extra, state)).toThrow(/position 6 is past model.max_position_embeddings \(6\)/);
    const long = tf.zeros([1, 7], 'int32') as tf.Tensor2D;
    expect(() => model.forward(long)).toThrow(/past model.max_position_embeddings/);
    tf.dispose([input, forward, extra, long, state as unknown as tf.TensorContainer]);
    model.dispose();
  });

  it('makes position-free attention tell a repeated token apart by where it stands', async () => {
    // Without any positions, causal attention over a constant sequence gives every position the
    // same output; the learned table breaks that symmetry.
    const logitsOf = async (maxPositions: number | undefined) => {
      const model = await zoologyAttention(maxPositions);
      const logits = model.forward(tf.fill([1, 4], 7, 'int32') as tf.Tensor2D);
      const rows = (await logits.array()) as number[][][];
      logits.dispose();
      model.dispose();
      return rows[0] as number[][];
    };
    const without = await logitsOf(undefined);
    const withPositions = await logitsOf(4);
    const spread = (rows: number[][]) =>
      Math.max(...rows.map((row) => Math.abs((row[0] as number) - (rows[0]?.[0] as number))));
    expect(spread(without)).toBeLessThan(1e-5);
    expect(spread(withPositions)).toBeGreaterThan(1e-3);
  });
});
