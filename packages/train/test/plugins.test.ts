import { resolve } from 'node:path';
import { mambaBlock, slidingWindowAttentionBlock } from '@interleave/blocks';
import { runBlockContract } from '@interleave/blocks/testing';
import {
  type BlockRegistry,
  capabilitiesOf,
  configDataSource,
  LanguageModel,
  NamedRegistry,
  REGISTRIES,
  registryOf,
  resolveLayers,
  SeededRandom,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { tokenShiftBlock } from '../../../configs/plugins/token-shift.js';
import { createRunContainer, prepareRun } from '../src/run/prepare-run.js';
import { REPLACED_DESCRIPTION } from './plugins/replace-mqar.js';

const CONFIGS = resolve(import.meta.dirname, '../../../configs');
const REPLACE_MQAR = resolve(import.meta.dirname, 'plugins/replace-mqar.ts');

describe('plugins', () => {
  it('loads a block from the path in `plugins:` and builds layers from it', async () => {
    const prepared = await prepareRun(resolve(CONFIGS, 'mqar-plugin.yaml'));
    expect(prepared.layers.map((layer) => layer.block.name)).toEqual(['token_shift', 'swa']);
    expect(prepared.layers[0]?.config).toEqual({ init_scale: 1 });
  });

  it('reports a plugin block typo with the same file:line errors as built-in blocks', async () => {
    await expect(
      prepareRun(resolve(CONFIGS, 'mqar-plugin.yaml'), ['model.layers[0]={block: token_shift, init_scal: 2}']),
    ).rejects.toThrow(
      "--set model.layers[0]={block: token_shift, init_scal: 2}: model.layers[0].init_scal: unknown key 'init_scal'",
    );
  });

  it('names a plugin that cannot be loaded', async () => {
    await expect(prepareRun(resolve(CONFIGS, 'mqar-plugin.yaml'), ['plugins=[./plugins/nope.ts]'])).rejects.toThrow(
      "plugins[0]: cannot load plugin './plugins/nope.ts'",
    );
  });
});

describe('plugins and tests replace registry entries through the container', () => {
  it('lets a plugin from `plugins:` replace a built-in task, which the run then uses', async () => {
    const builtin = await prepareRun(resolve(CONFIGS, 'mqar-swa.yaml'));
    expect(builtin.task.definition.description).not.toBe(REPLACED_DESCRIPTION);
    const replaced = await prepareRun(resolve(CONFIGS, 'mqar-swa.yaml'), [`plugins=[${REPLACE_MQAR}]`]);
    expect(replaced.task.definition.description).toBe(REPLACED_DESCRIPTION);
    expect(replaced.task.config).toEqual(builtin.task.config);
  });

  it('names an unknown task with the same message as an unknown block', async () => {
    await expect(prepareRun(resolve(CONFIGS, 'mqar-swa.yaml'), ['task.name=mqra'])).rejects.toThrow(
      "task.name: unknown task 'mqra' (registered: induction_heads, lm, mad_compression, mad_fuzzy_recall, mad_in_context_recall, mad_memorization, mad_noisy_recall, mad_selective_copying, mqar; plugins can register more)",
    );
  });

  it("builds a model from a test's replacement of one block", async () => {
    const container = await createRunContainer([], () => ({ file: 'test' }));
    let built = 0;
    registryOf(container, REGISTRIES.blocks).replace({
      ...mambaBlock,
      create: (context, config) => {
        built += 1;
        return mambaBlock.create(context, config);
      },
    });
    const config = {
      vocab_size: 16,
      d_model: 8,
      layers: [{ block: 'mamba', d_state: 4 }],
      tie_embeddings: true,
      norm_eps: 1e-5,
    };
    const layers = resolveLayers(config.layers, container, configDataSource('test'));
    const model = LanguageModel.build({
      container,
      config,
      layers,
      rng: new SeededRandom(3),
      backend: capabilitiesOf(tf.getBackend()),
    });
    expect(built).toBe(1);
    const logits = model.forward(tf.tensor2d([[1, 2, 3]], [1, 3], 'int32'));
    expect(logits.shape).toEqual([1, 3, 16]);
    tf.dispose(logits);
    model.dispose();
  });

  it("resolves layers against a test's own block registry bound with container.rebind", async () => {
    const container = await createRunContainer([], () => ({ file: 'test' }));
    const onlySwa: BlockRegistry = new NamedRegistry('block');
    onlySwa.register(slidingWindowAttentionBlock);
    container.rebind(REGISTRIES.blocks.token).toConstantValue(onlySwa);
    const source = configDataSource('layers.yaml');
    expect(resolveLayers([{ block: 'swa', window: 4 }], container, source)[0]?.block).toBe(slidingWindowAttentionBlock);
    expect(() => resolveLayers([{ block: 'mamba' }], container, source)).toThrow(
      "layers.yaml: model.layers[0].block: unknown block 'mamba' (registered: swa; plugins can register more)",
    );
  });
});

// A plugin's block passes the same contract checks as the built-in ones.
runBlockContract(tokenShiftBlock, {}, { backends: ['cpu', 'wasm'] });
