import { resolve } from 'node:path';
import { runBlockContract } from '@interleave/blocks/testing';
import { describe, expect, it } from 'vitest';
import { tokenShiftBlock } from '../../../configs/plugins/token-shift.js';
import { prepareRun } from '../src/run/prepare-run.js';

const CONFIGS = resolve(import.meta.dirname, '../../../configs');

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

// A plugin's block passes the same contract checks as the built-in ones.
runBlockContract(tokenShiftBlock, {}, { backends: ['cpu', 'wasm'] });
