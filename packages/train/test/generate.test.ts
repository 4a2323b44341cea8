import {
  fullAttentionBlock,
  mambaBlock,
  registerBuiltinBlocks,
  rglruBlock,
  slidingWindowAttentionBlock,
} from '@interleave/blocks';
import {
  applyPlugin,
  type BlockDefinition,
  capabilitiesOf,
  createContainer,
  generate,
  LanguageModel,
  SeededRandom,
  selectBackend,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';

async function tinyModel(blocks: Array<[BlockDefinition<unknown>, Record<string, unknown>]>) {
  const container = createContainer();
  await applyPlugin(container, registerBuiltinBlocks);
  return LanguageModel.build({
    container,
    config: { vocab_size: 24, d_model: 16, layers: [], tie_embeddings: true, norm_eps: 1e-5 },
    layers: blocks.map(([block, config]) => ({ block, config: block.schema.parse(config), mlp: null, path: [] })),
    rng: new SeededRandom(1),
    backend: capabilitiesOf(tf.getBackend()),
  });
}

/** tf.memory().numBytes after each step of a 300-token generation. */
async function memoryTrace(model: LanguageModel) {
  const bytes: number[] = [];
  const result = await generate(model, [[1, 2, 3]], {
    maxNewTokens: 300,
    onStep: (info) => bytes.push(info.memoryBytes),
  });
  return { bytes, result };
}

describe('generation in step mode', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('reproduces greedy decoding by repeated forward passes', async () => {
    const model = await tinyModel([
      [mambaBlock as BlockDefinition<unknown>, { d_state: 4 }],
      [slidingWindowAttentionBlock as BlockDefinition<unknown>, { window: 4, heads: 2 }],
    ]);
    const { tokens } = await generate(model, [[5, 6, 7]], { maxNewTokens: 6 });
    const byForward = [5, 6, 7];
    for (let i = 0; i < 6; i++) {
      const next = tf.tidy(() => {
        const logits = model.forward(tf.tensor2d([byForward], [1, byForward.length], 'int32'));
        return logits
          .slice([0, byForward.length - 1, 0], [1, 1, 24])
          .argMax(2)
          .dataSync()[0] as number;
      });
      byForward.push(next);
    }
    expect(tokens[0]).toEqual(byForward);
    model.dispose();
  });

  it.each([
    ['mamba', [[mambaBlock, { d_state: 4 }]]],
    ['sliding-window attention', [[slidingWindowAttentionBlock, { window: 8, heads: 2 }]]],
    ['rg-lru', [[rglruBlock, {}]]],
    [
      'griffin-style rg-lru + local attention',
      [
        [rglruBlock, {}],
        [slidingWindowAttentionBlock, { window: 8, heads: 2, kv_heads: 1 }],
      ],
    ],
    [
      'mamba + swa',
      [
        [mambaBlock, { d_state: 4 }],
        [slidingWindowAttentionBlock, { window: 8, heads: 2 }],
      ],
    ],
  ] as const)('keeps memory constant for %s', async (_name, blocks) => {
    const model = await tinyModel(blocks as unknown as Array<[BlockDefinition<unknown>, Record<string, unknown>]>);
    const before = tf.memory().numTensors;
    const { bytes, result } = await memoryTrace(model);
    expect(result.tokens[0]).toHaveLength(303);
    // After the window has filled, every step holds exactly the same bytes.
    expect(new Set(bytes.slice(20)).size).toBe(1);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('grows the cache of full attention by one key and value per token', async () => {
    const model = await tinyModel([[fullAttentionBlock as BlockDefinition<unknown>, { heads: 2 }]]);
    const { bytes } = await memoryTrace(model);
    const perToken = bytes.slice(1).map((value, index) => value - (bytes[index] as number));
    // keys + values, 16 floats each (d_model 16), float32.
    expect(new Set(perToken.slice(5))).toEqual(new Set([2 * 16 * 4]));
    model.dispose();
  });

  it('rejects prompts outside the vocabulary', async () => {
    const model = await tinyModel([[mambaBlock as BlockDefinition<unknown>, { d_state: 4 }]]);
    await expect(generate(model, [[1, 99]], { maxNewTokens: 2 })).rejects.toThrow(
      'prompt token 99 is outside the vocabulary [0, 24)',
    );
    model.dispose();
  });
});
