import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { mambaBlock, registerBuiltinBlocks, slidingWindowAttentionBlock } from '@interleave/blocks';
import {
  applyPlugin,
  capabilitiesOf,
  createContainer,
  LanguageModel,
  type ModelConfig,
  type ResolvedLayer,
  readSafetensorsFile,
  SeededRandom,
  writeSafetensorsFile,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { parse } from 'yaml';
import { configMetadata, METADATA_KEYS, MODEL_FILE, writeModelWeights } from '../src/checkpoint/checkpoint.js';
import { exportCheckpoint } from '../src/checkpoint/export-weights.js';
import { loadModelFromCheckpoint } from '../src/checkpoint/load-model.js';
import { MAMBA_SSM_CONFIG_KEY } from '../src/checkpoint/weight-layouts.js';
import { exportCommand } from '../src/cli/commands/export.js';
import { logitsOf, PURE_MAMBA_CONFIG, parameterShapes, temporaryDirectory, trainTinyRun } from './export-fixtures.js';

const MAMBA_PARAMETERS = [
  'A_log',
  'D',
  'conv1d.bias',
  'conv1d.weight',
  'dt_proj.bias',
  'dt_proj.weight',
  'in_proj.weight',
  'out_proj.weight',
  'x_proj.weight',
];

let runDirectory: string;
let work: string;

beforeAll(async () => {
  work = temporaryDirectory();
  runDirectory = await trainTinyRun(PURE_MAMBA_CONFIG, work);
});

/** Loads, runs the fixed batch, disposes: the logits and the parameters' names and shapes. */
async function loadAndRun(path: string, config?: string) {
  const loaded = await loadModelFromCheckpoint(path, { config });
  try {
    return { logits: logitsOf(loaded.model), shapes: parameterShapes(loaded.model), layout: loaded.layout };
  } finally {
    loaded.model.dispose();
  }
}

describe('self-describing weights', () => {
  it('records format pt and the model config in the metadata of a run checkpoint', async () => {
    const { metadata } = await readSafetensorsFile(join(runDirectory, 'artifacts/checkpoint', MODEL_FILE));
    expect(metadata.format).toBe('pt');
    const model = JSON.parse(metadata[METADATA_KEYS.model] as string);
    expect(model).toMatchObject({ vocab_size: 32, d_model: 16, tie_embeddings: true, norm_eps: 1e-5 });
  });

  it('loads a run folder, its checkpoint folder and its weights file to the same model', async () => {
    const fromRun = await loadAndRun(runDirectory);
    const fromFolder = await loadAndRun(join(runDirectory, 'artifacts/checkpoint'));
    const fromFile = await loadAndRun(join(runDirectory, 'artifacts/checkpoint', MODEL_FILE));
    expect(fromFolder.logits).toEqual(fromRun.logits);
    expect(fromFile.logits).toEqual(fromRun.logits);
    const { tensors } = await readSafetensorsFile(join(runDirectory, 'artifacts/checkpoint', MODEL_FILE));
    expect(fromRun.shapes).toEqual(Object.fromEntries(Object.entries(tensors).map(([n, t]) => [n, t.shape])));
    expect(tf.memory().numTensors).toBe(0);
  });

  it('rebuilds a model with a plugin block from its run folder, the plugin found from the original config', async () => {
    const directory = temporaryDirectory();
    const plugin = resolve(import.meta.dirname, '../../../configs/plugins/token-shift.ts');
    const config = PURE_MAMBA_CONFIG.replace(
      'name: export-check',
      `name: export-plugin\nplugins: [${relative(directory, plugin)}]`,
    ).replace(
      '        - { block: mamba, d_state: 4 }',
      '        - { block: mamba, d_state: 4 }\n        - { block: token_shift }',
    );
    const run = await trainTinyRun(config, directory);
    const loaded = await loadAndRun(run);
    expect(Object.keys(loaded.shapes)).toContain('layers.1.mixer.previous.weight');
    // The weights file alone carries the whole config once the run records it.
    const file = join(directory, 'described.safetensors');
    const model = await loadModelFromCheckpoint(run);
    await writeModelWeights(
      file,
      model.model,
      configMetadata({ file: join(directory, 'config.yaml'), resolved: parse(config) }),
    );
    model.model.dispose();
    expect((await loadAndRun(file)).logits).toEqual(loaded.logits);
  });
});

describe('export', () => {
  it('round-trips the interleave layout: same names, shapes and logits', async () => {
    const out = join(work, 'interleave.safetensors');
    const result = await exportCheckpoint(runDirectory, out);
    const original = await loadAndRun(runDirectory);
    const exported = await loadAndRun(out);
    expect(exported.logits).toEqual(original.logits);
    expect(exported.shapes).toEqual(original.shapes);
    expect(Object.fromEntries(result.tensors.map(({ name, shape }) => [name, shape]))).toEqual(original.shapes);
    const { metadata } = await readSafetensorsFile(out);
    expect(metadata).toMatchObject({ format: 'pt', 'interleave.layout': 'interleave' });
    expect(tf.memory().numTensors).toBe(0);
  });

  it("writes MambaLMHeadModel's names with --layout mamba_ssm, and loads them back", async () => {
    const out = join(work, 'mamba_ssm.safetensors');
    await exportCheckpoint(runDirectory, out, { layout: 'mamba_ssm' });
    const { tensors, metadata } = await readSafetensorsFile(out);
    const expected = [
      'backbone.embedding.weight',
      'backbone.norm_f.weight',
      'lm_head.weight',
      ...[0, 1].flatMap((i) => [
        `backbone.layers.${i}.norm.weight`,
        ...MAMBA_PARAMETERS.map((name) => `backbone.layers.${i}.mixer.${name}`),
      ]),
    ];
    expect(Object.keys(tensors).sort()).toEqual(expected.sort());
    const mixer = Object.fromEntries(
      MAMBA_PARAMETERS.map((name) => [name, tensors[`backbone.layers.0.mixer.${name}`]?.shape]),
    );
    // d_model 16, d_inner 32, d_state 4, d_conv 4, dt_rank ceil(16/16) = 1
    expect(mixer).toEqual({
      'in_proj.weight': [64, 16],
      'conv1d.weight': [32, 1, 4],
      'conv1d.bias': [32],
      'x_proj.weight': [9, 32],
      'dt_proj.weight': [32, 1],
      'dt_proj.bias': [32],
      A_log: [32, 4],
      D: [32],
      'out_proj.weight': [16, 32],
    });
    expect(tensors['lm_head.weight']?.data).toEqual(tensors['backbone.embedding.weight']?.data);
    expect(JSON.parse(metadata[MAMBA_SSM_CONFIG_KEY] as string)).toMatchObject({
      d_model: 16,
      n_layer: 2,
      vocab_size: 32,
      d_intermediate: 0,
      pad_vocab_size_multiple: 1,
      tie_embeddings: true,
      ssm_cfg: { d_state: 4, d_conv: 4, expand: 2, dt_rank: 'auto' },
    });
    const back = await loadAndRun(out);
    expect(back.layout).toBe('mamba_ssm');
    expect(back.logits).toEqual((await loadAndRun(runDirectory)).logits);
  });

  it("accepts a mamba_ssm file without lm_head.weight, as safetensors' save_model writes a tied head", async () => {
    const out = join(work, 'save-model.safetensors');
    await exportCheckpoint(runDirectory, out, { layout: 'mamba_ssm' });
    const { tensors, metadata } = await readSafetensorsFile(out);
    delete tensors['lm_head.weight'];
    await writeSafetensorsFile(out, tensors, metadata);
    expect((await loadAndRun(out)).logits).toEqual((await loadAndRun(runDirectory)).logits);
  });

  it('runs as `interleave export`', async () => {
    const out = join(work, 'cli', 'model.safetensors');
    const written: string[] = [];
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => written.push(String(chunk)) > 0);
    try {
      expect(await exportCommand.run([runDirectory, '--out', out, '--layout', 'mamba_ssm'])).toBe(0);
    } finally {
      write.mockRestore();
    }
    expect(written.join('')).toMatch(/wrote .*model\.safetensors: 23 tensors, [\d,]+ parameters, mamba_ssm layout/);
    await expect(exportCommand.run([runDirectory, '--out', out, '--layout', 'torch'])).rejects.toThrow(
      "unknown --layout 'torch' (choose interleave, mamba_ssm, recurrentgemma)",
    );
    await expect(exportCommand.run([runDirectory])).rejects.toThrow('export needs --out');
  });
});

/** A model built in-process (no training) with its weights file; `layers` picks the blocks. */
async function writeBuiltModel(file: string, layers: ResolvedLayer[], entries: unknown[]): Promise<void> {
  const container = createContainer();
  await applyPlugin(container, registerBuiltinBlocks);
  const config = { vocab_size: 32, d_model: 16, layers: entries, tie_embeddings: true, norm_eps: 1e-5 } as ModelConfig;
  const model = LanguageModel.build({
    container,
    config,
    layers,
    rng: new SeededRandom(1),
    backend: capabilitiesOf(tf.getBackend()),
  });
  await writeModelWeights(file, model);
  model.dispose();
}

describe('errors', () => {
  const mamba = (mlp: ResolvedLayer['mlp'] = null): ResolvedLayer => ({
    block: mambaBlock as never,
    config: mambaBlock.schema.parse({ d_state: 4 }),
    mlp,
    path: [],
  });

  it('refuses --layout mamba_ssm for a layer that is not Mamba, or has an MLP', async () => {
    const directory = temporaryDirectory();
    const hybrid = join(directory, 'hybrid.safetensors');
    const swa: ResolvedLayer = {
      block: slidingWindowAttentionBlock as never,
      config: slidingWindowAttentionBlock.schema.parse({ window: 4, heads: 2 }),
      mlp: null,
      path: [],
    };
    await writeBuiltModel(
      hybrid,
      [mamba(), swa],
      [
        { block: 'mamba', d_state: 4 },
        { block: 'swa', window: 4, heads: 2 },
      ],
    );
    await expect(exportCheckpoint(hybrid, join(directory, 'x.safetensors'), { layout: 'mamba_ssm' })).rejects.toThrow(
      "--layout mamba_ssm needs a model whose layers are all Mamba without MLP (MambaLMHeadModel); layers.1 is a 'swa' layer",
    );
    const withMlp = join(directory, 'mlp.safetensors');
    const mlp = { expansion: 2, activation: 'gelu' as const };
    await writeBuiltModel(withMlp, [mamba(mlp)], [{ block: 'mamba', d_state: 4, mlp }]);
    await expect(exportCheckpoint(withMlp, join(directory, 'y.safetensors'), { layout: 'mamba_ssm' })).rejects.toThrow(
      'layers.0 has an MLP',
    );
    // The interleave layout takes any model.
    await exportCheckpoint(hybrid, join(directory, 'z.safetensors'));
  });

  it('names the tensor whose shape is wrong, that is missing, or that the model lacks', async () => {
    const source = join(work, 'edit-source.safetensors');
    await exportCheckpoint(runDirectory, source);
    const { tensors, metadata } = await readSafetensorsFile(source);
    const edited = async (change: (t: typeof tensors) => void) => {
      const copy = { ...tensors };
      change(copy);
      const file = join(work, `edited-${Math.random().toString(36).slice(2)}.safetensors`);
      await writeSafetensorsFile(file, copy, metadata);
      return file;
    };
    const wrongShape = await edited((t) => {
      t['layers.1.mixer.A_log'] = { dtype: 'F32', shape: [32, 8], data: new Float32Array(256) };
    });
    await expect(loadModelFromCheckpoint(wrongShape)).rejects.toThrow(
      "tensor 'layers.1.mixer.A_log' has shape [32,8], the model built from the config in its metadata expects [32,4]",
    );
    const missing = await edited((t) => {
      delete t['layers.0.mixer.dt_proj.bias'];
    });
    await expect(loadModelFromCheckpoint(missing)).rejects.toThrow(
      "no tensor 'layers.0.mixer.dt_proj.bias' (the model built from the config in its metadata has it, shape [32])",
    );
    const extra = await edited((t) => {
      t['layers.2.mixer.D'] = { dtype: 'F32', shape: [32], data: new Float32Array(32) };
    });
    await expect(loadModelFromCheckpoint(extra)).rejects.toThrow("tensor 'layers.2.mixer.D' is not a parameter of");
    const integer = await edited((t) => {
      t['layers.0.mixer.D'] = { dtype: 'I32', shape: [32], data: new Int32Array(32) };
    });
    await expect(loadModelFromCheckpoint(integer)).rejects.toThrow("tensor 'layers.0.mixer.D' is I32");
    expect(tf.memory().numTensors).toBe(0);
  });

  it('refuses a mamba_ssm file whose head differs from the tied embedding', async () => {
    const out = join(work, 'untied.safetensors');
    await exportCheckpoint(runDirectory, out, { layout: 'mamba_ssm' });
    const { tensors, metadata } = await readSafetensorsFile(out);
    const head = tensors['lm_head.weight'];
    if (head === undefined) throw new Error('no lm_head.weight');
    const changed = head.data.slice() as Float32Array;
    changed[0] = (changed[0] as number) + 1;
    await writeSafetensorsFile(out, { ...tensors, 'lm_head.weight': { ...head, data: changed } }, metadata);
    await expect(loadModelFromCheckpoint(out)).rejects.toThrow(
      "'lm_head.weight' differs from 'backbone.embedding.weight', but the config ties the head",
    );
  });

  it('asks for a config when the weights describe no model, and names a path that holds no checkpoint', async () => {
    const directory = temporaryDirectory();
    const { tensors } = await readSafetensorsFile(join(runDirectory, 'artifacts/checkpoint', MODEL_FILE));
    const bare = join(directory, 'bare.safetensors');
    await writeSafetensorsFile(bare, tensors);
    await expect(loadModelFromCheckpoint(bare)).rejects.toThrow(
      'does not say which model it holds (no interleave.config metadata, no run config beside it); pass the config it was trained with (--config <config.yaml>)',
    );
    const configFile = join(directory, 'config.yaml');
    writeFileSync(configFile, PURE_MAMBA_CONFIG);
    expect((await loadAndRun(bare, configFile)).logits).toEqual((await loadAndRun(runDirectory)).logits);

    await expect(loadModelFromCheckpoint(join(directory, 'nothing-here'))).rejects.toThrow(
      /no checkpoint at .*nothing-here: no such file or folder/,
    );
    mkdirSync(join(directory, 'empty'));
    await expect(loadModelFromCheckpoint(join(directory, 'empty'))).rejects.toThrow(/empty holds no checkpoint/);
  });
});
