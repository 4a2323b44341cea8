import { fullAttentionBlock, hyenaBlock, mambaBlock, registerBuiltinBlocks, rglruBlock } from '@interleave/blocks';
import {
  type ActivationCheckpointing,
  applyPlugin,
  type BlockDefinition,
  capabilitiesOf,
  createContainer,
  LanguageModel,
  type ResolvedLayer,
  SeededRandom,
} from '@interleave/core';
import { mqarTask } from '@interleave/eval';
import * as tf from '@tensorflow/tfjs';
import { headObjective } from '../src/trainer/head-objective.js';
import { Trainer } from '../src/trainer/trainer.js';
import { tinyTrainConfig } from './support.js';

// biome-ignore lint/suspicious/noExplicitAny: each block carries its own config type
type AnyBlock = BlockDefinition<any>;

/** One layer of `block` with `keys`, and a gated MLP when `mlp`. */
export function layerOf(block: AnyBlock, keys: Record<string, unknown>, mlp = false): ResolvedLayer {
  return {
    block,
    config: block.schema.parse(keys),
    mlp: mlp ? { expansion: 2, activation: 'gelu' } : null,
    path: [],
  };
}

/** Attention (with an MLP), Mamba, RG-LRU and Hyena: every kind of layer a checkpoint recomputes. */
export const mixedLayers = (): ResolvedLayer[] => [
  layerOf(fullAttentionBlock, { heads: 2 }, true),
  layerOf(mambaBlock, { d_state: 4 }),
  layerOf(rglruBlock, {}, true),
  layerOf(hyenaBlock, { filter_order: 8, max_len: 64 }),
];

/**
 * A trainer for `layers` (d_model 16) on MQAR at `seqLen`, training with `checkpointing`; the
 * vocabulary is 32 tokens, or more where MQAR needs more than `seqLen`.
 */
export async function checkpointingTrainer(options: {
  seed: number;
  layers: ResolvedLayer[];
  checkpointing: ActivationCheckpointing;
  seqLen?: number;
  batchSize?: number;
}): Promise<Trainer> {
  const { seed, layers, checkpointing, seqLen = 16, batchSize = 4 } = options;
  const vocabSize = Math.max(32, seqLen + 1);
  const container = createContainer();
  await applyPlugin(container, registerBuiltinBlocks);
  const model = LanguageModel.build({
    container,
    config: { vocab_size: vocabSize, d_model: 16, layers: [], tie_embeddings: true, norm_eps: 1e-5 },
    layers,
    rng: new SeededRandom(seed),
    backend: capabilitiesOf(tf.getBackend()),
  });
  const task = mqarTask.create(mqarTask.schema.parse({ seq_len: seqLen, num_kv_pairs: 2, test_examples: 8 }), {
    vocabSize,
    seed,
  });
  const train = { ...tinyTrainConfig, batch_size: batchSize, activation_checkpointing: checkpointing };
  return new Trainer(model, task, train);
}

/**
 * The loss of the trainer's first batch and every parameter's gradient by name, as kept tensors
 * (the caller disposes them), computed with or without checkpointed layers.
 */
export function lossAndGradients(
  trainer: Trainer,
  checkpointing: ActivationCheckpointing,
): { loss: tf.Scalar; gradients: Record<string, tf.Tensor> } {
  const batch = trainer.task.trainBatch(0, trainer.train.batch_size);
  const parameters = trainer.model.parameters.list();
  return tf.tidy(() => {
    const shape: [number, number] = [batch.batchSize, batch.seqLen];
    const inputs = tf.tensor2d(batch.inputs, shape, 'int32');
    const supervision = {
      targets: tf.tensor2d(batch.targets, shape, 'int32'),
      mask: tf.tensor2d(batch.mask, shape, 'float32'),
    };
    const { value, grads } = tf.variableGrads(
      () =>
        headObjective(trainer.model, inputs, supervision, undefined, { activationCheckpointing: checkpointing }).loss,
      parameters.map((parameter) => parameter.variable),
    );
    const gradients: Record<string, tf.Tensor> = {};
    for (const { name, variable } of parameters) {
      const gradient = grads[variable.name];
      if (gradient === undefined) throw new Error(`no gradient for ${name}`);
      gradients[name] = gradient;
    }
    return { loss: value, gradients };
  });
}

/** The values of `lossAndGradients`, read back (asynchronously: webgpu in Node cannot read synchronously). */
export async function readLossAndGradients(
  trainer: Trainer,
  checkpointing: ActivationCheckpointing,
): Promise<{ loss: number; gradients: Record<string, number[]> }> {
  const { loss, gradients } = lossAndGradients(trainer, checkpointing);
  try {
    const values: Record<string, number[]> = {};
    for (const [name, gradient] of Object.entries(gradients)) values[name] = Array.from(await gradient.data());
    return { loss: (await loss.data())[0] as number, gradients: values };
  } finally {
    tf.dispose([loss, ...Object.values(gradients)]);
  }
}

export function maxAbsDifference(actual: readonly number[], expected: readonly number[]): number {
  return actual.reduce((worst, value, index) => Math.max(worst, Math.abs(value - (expected[index] as number))), 0);
}
