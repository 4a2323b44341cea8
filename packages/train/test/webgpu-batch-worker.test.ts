import { useWebgpuBackend } from '@interleave/blocks/testing';
import { capabilitiesOf, LanguageModel, SeededRandom } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { experimentConfigFromText } from '../src/config/experiment-config.js';
import { prepareLoadedRun } from '../src/run/prepare-run.js';
import { BatchWorker, batchRecipeOf } from '../src/trainer/batch-worker.js';
import { Trainer } from '../src/trainer/trainer.js';

/**
 * On webgpu a replayed step's derived uploads (the embedding gradient's sort of the token ids)
 * come computed with the batch from the worker, and training matches batches drawn and sorted on
 * the main thread bit for bit.
 */
useWebgpuBackend();

const CONFIG = `
name: webgpu-batch-worker-test
seed: 5
model: { vocab_size: 48, d_model: 16, layers: [{ block: attention, heads: 2 }] }
task: { name: mqar, seq_len: 16, num_kv_pairs: 2, test_examples: 8 }
train:
  steps: 14
  batch_size: 4
  optimizer: { name: adamw, lr: 3.0e-3, weight_decay: 0.1, betas: [0.9, 0.98] }
  schedule: { warmup_steps: 2, decay: cosine }
  grad_clip: 1.0
  eval_every: null
  batch_worker: on
`;

async function train(
  withWorker: boolean,
): Promise<{ losses: number[]; norms: number[]; status: string; replay: string }> {
  const loaded = experimentConfigFromText(CONFIG, 'webgpu-batch-worker.yaml');
  const prepared = await prepareLoadedRun(loaded);
  const { config } = loaded;
  const model = LanguageModel.build({
    container: prepared.container,
    config: config.model,
    layers: prepared.layers,
    rng: new SeededRandom(config.seed),
    backend: capabilitiesOf(tf.getBackend()),
  });
  const task = prepared.task.definition.create(prepared.task.config, { vocabSize: 48, seed: 5 });
  const batchWorker = withWorker ? new BatchWorker(batchRecipeOf(loaded)) : undefined;
  const trainer = new Trainer(model, task, config.train, { batchWorker });
  const losses: number[] = [];
  const norms: number[] = [];
  try {
    for (let step = 0; step < config.train.steps; step++) {
      const metrics = await trainer.trainStep({ overlapNext: step < config.train.steps - 1 });
      losses.push(metrics.loss);
      norms.push(metrics.gradNorm);
    }
    return { losses, norms, status: trainer.batchStatus, replay: trainer.stepReplayStatus };
  } finally {
    trainer.dispose();
    model.dispose();
  }
}

describe('batch worker on webgpu', () => {
  it('sends the replayed step its sorted token ids with each batch; the same losses as the main thread', async () => {
    const onWorker = await train(true);
    const onMain = await train(false);
    expect(onWorker.replay).toMatch(/^replaying/);
    // Recorded at steps 2 and 3; batches asked for after that come with the sort.
    expect(onWorker.status).toMatch(
      /on a worker thread, up to 3 ahead \(14 drawn there, \d+ with the step's derived uploads\)/,
    );
    const withUploads = Number(/(\d+) with the step's derived uploads/.exec(onWorker.status)?.[1]);
    expect(withUploads).toBeGreaterThanOrEqual(6);
    expect(onWorker.losses).toEqual(onMain.losses);
    expect(onWorker.norms).toEqual(onMain.norms);
  });
});
