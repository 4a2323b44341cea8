import { registerBuiltinBlocks } from '@interleave/blocks';
import {
  applyPlugin,
  capabilitiesOf,
  createContainer,
  headChunkRows,
  LanguageModel,
  SeededRandom,
  selectBackend,
} from '@interleave/core';
import { mqarTask } from '@interleave/eval';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { startWebgpuBackend } from '../../blocks/test/support/webgpu-device.js';
import { Trainer } from '../src/trainer/trainer.js';
import { tinyTrainConfig } from './support.js';

/**
 * A step whose logits are one tensor larger than the llvmpipe device's 128 MiB storage-binding
 * limit: vocab 8,192 × 2 × 2,100 tokens × 4 B ≈ 131 MiB. Unchunked it fails with a GPU validation
 * error (as the reference hybrid's 2 GiB logits do at L4096 on an H200); in row chunks it trains.
 * It runs in ten chunks, as the H200 ran the reference hybrid at L16384 (vocab 16,385) in nine.
 * No mixer layers: the head and its loss are what is measured, and d_model 8 keeps llvmpipe quick.
 * The reference is wasm (a CPU backend on tf ops): the cpu backend takes over a minute a step here.
 */
const VOCAB = 8192;
const SEQ_LEN = 2100;
const BATCH = 2;
/** A chunk budget of 420 rows: 10 chunks of the 4,200 rows, each under the device's binding limit. */
const CHUNK_BYTES = 420 * VOCAB * 4;
const CHUNKS = 10;

async function trainAndEvaluate(): Promise<{ losses: number[]; accuracies: number[]; evalLoss: number }> {
  const container = createContainer();
  await applyPlugin(container, registerBuiltinBlocks);
  const model = LanguageModel.build({
    container,
    config: { vocab_size: VOCAB, d_model: 8, layers: [], tie_embeddings: true, norm_eps: 1e-5 },
    layers: [],
    rng: new SeededRandom(21),
    backend: capabilitiesOf(tf.getBackend()),
  });
  const task = mqarTask.create(mqarTask.schema.parse({ seq_len: SEQ_LEN, num_kv_pairs: 8, test_examples: BATCH }), {
    vocabSize: VOCAB,
    seed: 21,
  });
  // Every position's logits (head_rows: all), in CHUNKS chunks: more than a shader stage's 8
  // storage buffers could sum at once (the chunks' scalars are added pairwise).
  const trainer = new Trainer(
    model,
    task,
    { ...tinyTrainConfig, batch_size: BATCH, head_rows: 'all' },
    {
      headChunkBytes: CHUNK_BYTES,
    },
  );
  const losses: number[] = [];
  const accuracies: number[] = [];
  for (let i = 0; i < 2; i++) {
    const step = await trainer.trainStep();
    losses.push(step.loss);
    accuracies.push(step.accuracy);
  }
  const evalLoss = (await trainer.evaluate()).loss;
  trainer.dispose();
  model.dispose();
  return { losses, accuracies, evalLoss };
}

describe('the output head in row chunks on webgpu (Dawn over llvmpipe)', () => {
  it('trains a step whose logits exceed one storage binding, with the wasm (CPU) backend losses', async () => {
    expect(headChunkRows(BATCH * SEQ_LEN, VOCAB, CHUNK_BYTES)).toHaveLength(CHUNKS);
    await selectBackend('wasm');
    const onCpu = await trainAndEvaluate();
    await startWebgpuBackend();
    const before = tf.memory().numTensors;
    const onGpu = await trainAndEvaluate();
    expect(tf.memory().numTensors).toBe(before);
    expect(onGpu.losses.every(Number.isFinite)).toBe(true);
    onGpu.losses.forEach((loss, step) => {
      expect(
        Math.abs(loss - (onCpu.losses[step] as number)),
        `step ${step}: ${loss} vs ${onCpu.losses[step]}`,
      ).toBeLessThan(1e-3);
    });
    expect(onGpu.accuracies).toEqual(onCpu.accuracies);
    expect(Math.abs(onGpu.evalLoss - onCpu.evalLoss)).toBeLessThan(1e-3);
  }, 600_000);
});
