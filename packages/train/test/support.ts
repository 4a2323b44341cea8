import { mambaBlock, registerBuiltinBlocks, slidingWindowAttentionBlock } from '@interleave/blocks';
import {
  applyPlugin,
  capabilitiesOf,
  createContainer,
  LanguageModel,
  type ResolvedLayer,
  SeededRandom,
  type Tracker,
} from '@interleave/core';
import { mqarTask } from '@interleave/eval';
import * as tf from '@tensorflow/tfjs';
import type { TrainConfig } from '../src/config/train-schema.js';
import { Trainer } from '../src/trainer/trainer.js';

export const tinyTrainConfig: TrainConfig = {
  steps: 40,
  batch_size: 4,
  optimizer: { name: 'adamw', lr: 3e-3, weight_decay: 0.1, betas: [0.9, 0.98], eps: 1e-8 },
  schedule: { warmup_steps: 5, decay: 'cosine', min_lr_ratio: 0.1 },
  grad_clip: 1,
  eval_every: null,
  checkpoint_every: null,
  log_every: 10,
  metrics_every: 1,
  activation_checkpointing: 'none',
  step_replay: 'auto',
  head_rows: 'supervised',
  batch_worker: 'auto',
  batch_threads: 'auto',
};

/** A two-layer Mamba + SWA model with MLPs on a small MQAR task: every code path of a step. */
export async function tinyHybridTrainer(
  seed: number,
  train: TrainConfig = tinyTrainConfig,
  headChunkBytes?: number,
): Promise<Trainer> {
  const container = createContainer();
  await applyPlugin(container, registerBuiltinBlocks);
  const mamba = mambaBlock;
  const swa = slidingWindowAttentionBlock;
  const layers: ResolvedLayer[] = [
    { block: mamba as never, config: mamba.schema.parse({ d_state: 4 }), mlp: null, path: [] },
    {
      block: swa as never,
      config: swa.schema.parse({ window: 8, heads: 2 }),
      mlp: { expansion: 2, activation: 'gelu' },
      path: [],
    },
  ];
  const model = LanguageModel.build({
    container,
    config: { vocab_size: 32, d_model: 16, layers: [], tie_embeddings: true, norm_eps: 1e-5 },
    layers,
    rng: new SeededRandom(seed),
    backend: capabilitiesOf(tf.getBackend()),
  });
  const task = mqarTask.create(mqarTask.schema.parse({ seq_len: 16, num_kv_pairs: 2, test_examples: 8 }), {
    vocabSize: 32,
    seed,
  });
  return new Trainer(model, task, train, { headChunkBytes });
}

export function disposeTrainer(trainer: Trainer): void {
  trainer.dispose();
  trainer.model.dispose();
}

/** A tracker that keeps nothing but hands every metric call to `logMetrics` (train-loop tests). */
export function metricsOnlyTracker(logMetrics: Tracker['logMetrics']): Tracker {
  return {
    runId: 'test',
    experimentId: '0',
    artifactLocation: '',
    logParams: async () => {},
    setTags: async () => {},
    logArtifact: async () => {},
    end: async () => {},
    logMetrics,
  };
}
