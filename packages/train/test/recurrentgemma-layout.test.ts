import { join } from 'node:path';
import { readSafetensorsFile, type TensorRecord } from '@interleave/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportCheckpoint } from '../src/checkpoint/export-weights.js';
import { loadModelFromCheckpoint } from '../src/checkpoint/load-model.js';
import { fromRecurrentGemmaLayout } from '../src/checkpoint/recurrentgemma-layout.js';
import { logitsOf, PURE_MAMBA_CONFIG, temporaryDirectory, trainTinyRun } from './export-fixtures.js';

/** An RG-LRU layer (d_rnn 24 in 2 gate heads of 12, conv width 4) and a window layer. */
const RGLRU_HYBRID_CONFIG = `name: recurrentgemma-layout
seed: 5
backend: wasm
model:
  vocab_size: 32
  d_model: 16
  layers:
    - { block: rglru, d_rnn: 24, heads: 2 }
    - { block: swa, window: 4, heads: 2 }
task: { name: mqar, seq_len: 16, num_kv_pairs: 2, test_examples: 8 }
train:
  steps: 2
  batch_size: 4
  optimizer: { name: adamw, lr: 1.0e-2 }
tracking: { uri: ./mlruns, experiment: export }
`;

/**
 * recurrentgemma/torch/modules.py `RecurrentBlock` and layers.py `Conv1D`, `RGLRU`,
 * `BlockDiagonalLinear` as a state_dict: name → shape, for width 16, lru_width 24, 2 heads,
 * conv1d_temporal_width 4.
 */
const RECURRENT_BLOCK_TREE: Record<string, number[]> = {
  'linear_y.weight': [24, 16],
  'linear_y.bias': [24],
  'linear_x.weight': [24, 16],
  'linear_x.bias': [24],
  'linear_out.weight': [16, 24],
  'linear_out.bias': [16],
  'conv_1d.w': [4, 24],
  'conv_1d.b': [24],
  'rg_lru.a_param': [24],
  'rg_lru.input_gate.w': [2, 12, 12],
  'rg_lru.input_gate.b': [2, 12],
  'rg_lru.a_gate.w': [2, 12, 12],
  'rg_lru.a_gate.b': [2, 12],
};

let work: string;
let runDirectory: string;

beforeAll(async () => {
  work = temporaryDirectory();
  runDirectory = await trainTinyRun(RGLRU_HYBRID_CONFIG, work);
});

async function logitsAndLayout(path: string) {
  const loaded = await loadModelFromCheckpoint(path);
  try {
    return { logits: logitsOf(loaded.model), layout: loaded.layout };
  } finally {
    loaded.model.dispose();
  }
}

describe('--layout recurrentgemma', () => {
  it("names every RG-LRU tensor as recurrentgemma's RecurrentBlock does, with its shapes", async () => {
    const out = join(work, 'recurrentgemma.safetensors');
    const result = await exportCheckpoint(runDirectory, out, { layout: 'recurrentgemma' });
    expect(result.layout).toBe('recurrentgemma');
    const { tensors, metadata } = await readSafetensorsFile(out);
    expect(metadata['interleave.layout']).toBe('recurrentgemma');
    const prefix = 'blocks.0.recurrent_block.';
    const block = Object.fromEntries(
      Object.entries(tensors)
        .filter(([name]) => name.startsWith(prefix))
        .map(([name, tensor]) => [name.slice(prefix.length), tensor.shape]),
    );
    expect(block).toEqual(RECURRENT_BLOCK_TREE);
    // The rest keeps our names: no RG-LRU tensor is left under layers.0.mixer.
    expect(Object.keys(tensors).filter((name) => name.startsWith('layers.0.mixer.'))).toEqual([]);
    expect(Object.keys(tensors)).toEqual(expect.arrayContaining(['embedding.weight', 'layers.1.mixer.q_proj.weight']));
  });

  it('transposes the convolution to [K, d_rnn] with the taps in the same order', async () => {
    const ours = (await readSafetensorsFile(join(runDirectory, 'artifacts', 'checkpoint', 'model.safetensors')))
      .tensors['layers.0.mixer.conv_1d.weight'] as TensorRecord;
    const out = join(work, 'recurrentgemma-conv.safetensors');
    await exportCheckpoint(runDirectory, out, { layout: 'recurrentgemma' });
    const theirs = (await readSafetensorsFile(out)).tensors['blocks.0.recurrent_block.conv_1d.w'] as TensorRecord;
    expect(ours.shape).toEqual([24, 1, 4]);
    for (let channel = 0; channel < 24; channel++) {
      for (let tap = 0; tap < 4; tap++) expect(theirs.data[tap * 24 + channel]).toBe(ours.data[channel * 4 + tap]);
    }
  });

  it('loads back (the layout detected from the names) to the same logits', async () => {
    const out = join(work, 'recurrentgemma-back.safetensors');
    await exportCheckpoint(runDirectory, out, { layout: 'recurrentgemma' });
    const back = await logitsAndLayout(out);
    expect(back.layout).toBe('recurrentgemma');
    expect(back.logits).toEqual((await logitsAndLayout(runDirectory)).logits);
  });

  it('refuses a model without an RG-LRU layer, and a tensor RecurrentBlock does not have', async () => {
    const mamba = await trainTinyRun(PURE_MAMBA_CONFIG, temporaryDirectory());
    await expect(
      exportCheckpoint(mamba, join(work, 'no-rglru.safetensors'), { layout: 'recurrentgemma' }),
    ).rejects.toThrow("--layout recurrentgemma needs at least one 'rglru' layer");
    const stray = { dtype: 'F32' as const, shape: [2], data: new Float32Array(2) };
    expect(() =>
      fromRecurrentGemmaLayout({ 'blocks.3.recurrent_block.rg_lru.b_param': stray }, 'x.safetensors'),
    ).toThrow(
      "x.safetensors: 'blocks.3.recurrent_block.rg_lru.b_param' is not a parameter of recurrentgemma's RecurrentBlock",
    );
  });
});
