import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fullAttentionBlock, mambaBlock, registerBuiltinBlocks } from '@interleave/blocks';
import {
  applyPlugin,
  type BlockDefinition,
  capabilitiesOf,
  createContainer,
  findRuns,
  LanguageModel,
  readMetricHistory,
  SeededRandom,
  selectBackend,
} from '@interleave/core';
import { inductionExtrapolationEvaluation, inductionTestBatches, lastPredictionsByStep } from '@interleave/eval';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';

const CLI = resolve(import.meta.dirname, '../bin/interleave.mjs');

async function buildModel(block: BlockDefinition<unknown>, keys: Record<string, unknown>, seed = 1) {
  const container = createContainer();
  await applyPlugin(container, registerBuiltinBlocks);
  const layer = { block, config: block.schema.parse(keys), mlp: null, path: [] };
  return LanguageModel.build({
    container,
    config: { vocab_size: 16, d_model: 16, layers: [], tie_embeddings: true, norm_eps: 1e-5 },
    layers: [layer, layer],
    rng: new SeededRandom(seed),
    backend: capabilitiesOf(tf.getBackend()),
  });
}

const quiet = { seed: 3, trainingTask: { name: 'induction_heads', vocab: 16 }, log: () => {} };

describe('evaluation in step mode', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('predicts the last token exactly as the parallel form does, without leaking tensors', async () => {
    const model = await buildModel(mambaBlock as BlockDefinition<unknown>, { d_state: 4 });
    const [batch] = inductionTestBatches(7, 16, 24, 5, 5);
    if (batch === undefined) throw new Error('no batch');
    const before = tf.memory().numTensors;
    const { predictions } = await lastPredictionsByStep(model, batch);
    expect(tf.memory().numTensors).toBe(before);
    const parallel = tf.tidy(() => {
      const logits = model.forward(tf.tensor2d(batch.inputs, [5, 24], 'int32'));
      return logits.slice([0, 23, 0], [5, 1, 16]).reshape([5, 16]).argMax(1).dataSync();
    });
    expect(Array.from(predictions)).toEqual(Array.from(parallel));
    model.dispose();
  });

  it('keeps a recurrent state flat across lengths and evaluates every length', async () => {
    const model = await buildModel(mambaBlock as BlockDefinition<unknown>, { d_state: 4 });
    const config = inductionExtrapolationEvaluation.schema.parse({ lengths: [8, 64, 32], examples: 4 });
    const { metrics, tags } = await inductionExtrapolationEvaluation.run(config, { model, ...quiet });
    const bytes = [8, 32, 64].map((length) => metrics[`eval/induction/len_${length}/state_bytes_per_sequence`]);
    expect(bytes[0]).toBeGreaterThan(0);
    expect(new Set(bytes).size).toBe(1);
    for (const length of [8, 32, 64]) {
      const accuracy = metrics[`eval/induction/len_${length}/accuracy`] as number;
      expect(accuracy).toBeGreaterThanOrEqual(0);
      expect(accuracy).toBeLessThanOrEqual(1);
      // Error bars: the 95% Wilson interval around it, over the 4 examples.
      expect(metrics[`eval/induction/len_${length}/examples`]).toBe(4);
      const low = metrics[`eval/induction/len_${length}/accuracy_ci_low`] as number;
      const high = metrics[`eval/induction/len_${length}/accuracy_ci_high`] as number;
      expect(low).toBeLessThanOrEqual(accuracy);
      expect(high).toBeGreaterThanOrEqual(accuracy);
      expect(high - low).toBeGreaterThan(0.3);
    }
    expect(tags).toBeUndefined();
    model.dispose();
  });

  it('stops a growing state at max_growing_state_length and records what it left out', async () => {
    const model = await buildModel(fullAttentionBlock as BlockDefinition<unknown>, { heads: 2 });
    const config = inductionExtrapolationEvaluation.schema.parse({
      lengths: [8, 16, 32, 64],
      examples: 2,
      max_growing_state_length: 16,
    });
    const { metrics, tags } = await inductionExtrapolationEvaluation.run(config, { model, ...quiet });
    expect(Object.keys(metrics).filter((key) => key.endsWith('/accuracy'))).toEqual([
      'eval/induction/len_8/accuracy',
      'eval/induction/len_16/accuracy',
    ]);
    expect(metrics['eval/induction/len_16/state_bytes_per_sequence']).toBeGreaterThan(
      metrics['eval/induction/len_8/state_bytes_per_sequence'] as number,
    );
    expect(tags).toEqual({ 'interleave.eval.induction_not_evaluated': '32,64' });
    model.dispose();
  });
});

const CONFIG = `name: evals-test
seed: 4
model:
  vocab_size: 128
  d_model: 16
  layers:
    - { block: mamba, d_state: 4 }
    - { block: swa, window: 8, heads: 2 }
task: { name: mqar, seq_len: 16, num_kv_pairs: 2, test_examples: 16 }
train:
  steps: 3
  batch_size: 4
  optimizer: { name: adamw, lr: 1.0e-3 }
  log_every: 1
evals:
  - task: mqar_grid
    seq_len: [16, 32]
    num_kv_pairs: [2, 4, 16]
    examples: 8
  - { task: induction_extrapolation, lengths: [8, 16], examples: 4 }
tracking: { uri: ./mlruns, experiment: evals-test }
`;

function interleave(args: string[], cwd: string) {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, INTERLEAVE_BACKEND: 'wasm' },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('evals: after training, and interleave eval', () => {
  const dir = mkdtempSync(join(tmpdir(), 'interleave-evals-'));
  writeFileSync(join(dir, 'config.yaml'), CONFIG);
  const uri = join(dir, 'mlruns');

  it('logs every evaluation to the training run at its last step', async () => {
    const trained = interleave(['train', 'config.yaml'], dir);
    expect(trained.stderr).toBe('');
    expect(trained.status).toBe(0);
    expect(trained.stdout).toContain('evaluation mqar_grid');
    // seq_len 16 holds at most 4 pairs: the K=16 cells are skipped, and said so.
    expect(trained.stdout).toMatch(/L16_K16 \(seq_len must be at least 4 × num_kv_pairs = 64/);
    const [run] = await findRuns(uri, 'evals-test');
    expect(run?.status).toBe('FINISHED');
    const keys = run?.metricKeys ?? [];
    for (const key of [
      'eval/mqar/L16_K2/accuracy',
      'eval/mqar/L16_K4/accuracy',
      'eval/mqar/L32_K2/accuracy',
      'eval/mqar/L32_K4/accuracy',
      'eval/induction/len_8/accuracy',
      'eval/induction/len_16/accuracy',
    ]) {
      expect(keys, key).toContain(key);
      const history = await readMetricHistory(uri, run?.runId ?? '', key);
      expect(history.map((point) => point.step)).toEqual([3]);
    }
    expect(keys).not.toContain('eval/mqar/L16_K16/accuracy');
    expect(run?.tags['interleave.eval.mqar_skipped']).toContain('L16_K16');
  });

  it('evaluates a finished run by id and adds the metrics without reopening it', async () => {
    const [run] = await findRuns(uri, 'evals-test');
    const runId = run?.runId ?? '';
    const result = interleave(
      ['eval', runId, '--task', 'mqar_grid', '--set', 'seq_len=[64]', '--set', 'num_kv_pairs=[8]'],
      dir,
    );
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    // The cell's accuracy and its 95% Wilson interval (low, high).
    expect(result.stdout).toContain(`logged 3 metrics to run ${runId}`);
    const [after] = await findRuns(uri, 'evals-test');
    expect(after?.status).toBe('FINISHED');
    expect(after?.endTime).toBe(run?.endTime);
    const history = await readMetricHistory(uri, runId, 'eval/mqar/L64_K8/accuracy');
    expect(history).toHaveLength(1);
    expect(history[0]?.step).toBe(3);
  });

  it('names an unknown evaluation and a mistyped key', () => {
    const [unknown, typo] = [
      interleave(['eval', join(uri), '--task', 'mqar_gird'], dir),
      interleave(['eval', 'config.yaml', '--task', 'mqar_grid', '--set', 'seq_lens=[64]'], dir),
    ];
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).not.toMatch(/^\s+at /m);
    expect(typo.status).toBe(1);
    expect(typo.stderr).not.toMatch(/^\s+at /m);
  });
});
