import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerBuiltinBlocks } from '@interleave/blocks';
import {
  applyPlugin,
  type BlockDefinition,
  capabilitiesOf,
  createContainer,
  findRuns,
  LanguageModel,
  type MlpFactory,
  modelFlopsPerToken,
  modelStateBytes,
  type NormFactory,
  readMetricHistory,
  SeededRandom,
  TOKENS,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import registerTokenShift, { tokenShiftBlock } from '../../../configs/plugins/token-shift.js';
import { prepareRun } from '../src/run/prepare-run.js';
import { trainFromConfig } from '../src/run/train-run.js';

describe('model FLOPs against the 6·N rule', () => {
  it('a model of matmuls only (token shift + MLPs) costs ≈ 2·N forward and ≈ 6·N in all per token', async () => {
    const container = createContainer();
    await applyPlugin(container, registerBuiltinBlocks);
    await applyPlugin(container, registerTokenShift);
    const mixer = tokenShiftBlock as BlockDefinition<unknown>;
    const layers = [0, 1].map((index) => ({
      block: mixer,
      config: tokenShiftBlock.schema.parse({}),
      mlp: { expansion: 4, activation: 'gelu' as const },
      path: ['model', 'layers', index],
    }));
    const model = LanguageModel.build({
      container,
      config: { vocab_size: 128, d_model: 64, layers: [], tie_embeddings: true, norm_eps: 1e-5 },
      layers,
      rng: new SeededRandom(1),
      backend: capabilitiesOf(tf.getBackend()),
    });
    const parameters = model.parameters.count();
    const flops = model.flopsPerToken(64);
    model.dispose();
    // Every matrix is used once per token (the tied embedding as the head); what is left is
    // pointwise work (norms, GeLU, residuals, the loss): ~2% at this width.
    const forwardRatio = flops.forward / (2 * parameters);
    const totalRatio = flops.total / (6 * parameters);
    expect(forwardRatio).toBeGreaterThan(1);
    expect(forwardRatio).toBeLessThan(1.04);
    expect(totalRatio).toBeGreaterThan(1);
    expect(totalRatio).toBeLessThan(1.04);
  });
});

const CONFIG = `name: compute-check
seed: 3
backend: wasm
model:
  vocab_size: 32
  d_model: 16
  layers:
    - { repeat: 2, pattern: [{ block: mamba, d_state: 4 }] }
    - { block: swa, window: 8, heads: 2, mlp: { expansion: 2 } }
task: { name: mqar, seq_len: 16, num_kv_pairs: 2, test_examples: 8 }
train:
  steps: 3
  batch_size: 4
  optimizer: { name: adamw, lr: 3.0e-3 }
tracking: { uri: ./mlruns, experiment: compute }
`;

describe('a training run logs its compute', () => {
  it('logs FLOPs per token, cumulative tokens and FLOPs at every step, and the architecture', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'interleave-compute-'));
    const file = join(dir, 'config.yaml');
    writeFileSync(file, CONFIG);
    const uri = join(dir, 'mlruns');
    const overrides = [`tracking.uri=${uri}`];
    let printed = '';
    const output = {
      write: (text: string) => {
        printed += text;
        return true;
      },
      isTTY: false,
    };
    const result = await trainFromConfig({ configFile: file, overrides, output });

    const prepared = await prepareRun(file, overrides);
    const expected = modelFlopsPerToken({
      config: prepared.loaded.config.model,
      layers: prepared.layers,
      norm: prepared.container.get<NormFactory>(TOKENS.NormFactory),
      mlp: prepared.container.get<MlpFactory>(TOKENS.MlpFactory),
      seqLen: 16,
    });
    const perToken = Math.round(expected.total);
    expect(perToken).toBeGreaterThan(0);

    const run = (await findRuns(uri, 'compute')).find((candidate) => candidate.runId === result.runId);
    expect(run?.tags['interleave.architecture']).toBe('mamba+mamba+swa');
    expect(run?.params['compute.flops_per_token']).toBe(String(perToken));
    expect(run?.params['compute.forward_flops_per_token']).toBe(String(Math.round(expected.forward)));
    const state = modelStateBytes({ config: prepared.loaded.config.model, layers: prepared.layers, length: 16 });
    expect(run?.params['model.state_bytes_per_sequence']).toBe(String(state.bytes));
    expect(run?.params['model.state_grows_with_length']).toBe('false');
    expect(run?.params['train.activation_checkpointing']).toBe('none');
    expect(run?.params['train.batch_worker']).toBe('auto');
    expect(run?.params['train.batch_threads']).toBe('auto');

    const tokens = await readMetricHistory(uri, result.runId, 'compute/tokens');
    const flops = await readMetricHistory(uri, result.runId, 'compute/flops');
    expect(tokens.map((point) => [point.step, point.value])).toEqual([
      [1, 4 * 16],
      [2, 2 * 4 * 16],
      [3, 3 * 4 * 16],
    ]);
    expect(flops.map((point) => [point.step, point.value])).toEqual(
      [1, 2, 3].map((step) => [step, step * 4 * 16 * perToken]),
    );
    expect(printed).toMatch(/^compute: \d+\.\d\d [kM]FLOP\/token \(forward\+backward\)$/m);
  });
});
