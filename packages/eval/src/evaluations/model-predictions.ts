import {
  type LanguageModel,
  type MixerState,
  type ModelState,
  type TokenBatch,
  throwIfWebgpuFailed,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';

/**
 * Correct and counted predictions at the batch's masked positions, with the parallel form (the
 * head in row chunks that fit the backend's binding limit: `LanguageModel.predict`).
 */
export async function maskedAccuracyByForward(
  model: LanguageModel,
  batch: TokenBatch,
  headChunkBytes?: number,
): Promise<{ correct: number; counted: number }> {
  const predictions = await readInt32(
    tf.tidy(() => model.predict(tf.tensor2d(batch.inputs, [batch.batchSize, batch.seqLen], 'int32'), headChunkBytes)),
  );
  let correct = 0;
  let counted = 0;
  for (let index = 0; index < batch.mask.length; index++) {
    if (batch.mask[index] === 0) continue;
    counted++;
    if (predictions[index] === batch.targets[index]) correct++;
  }
  return { correct, counted };
}

/**
 * The prediction after each sequence's last token, with the recurrent form: every token goes
 * through `step` once, so memory is what the mixers' states hold (constant for Mamba, RG-LRU and
 * sliding windows) and the prefix is never re-run. Also returns the state's size at the end.
 */
export async function lastPredictionsByStep(
  model: LanguageModel,
  batch: TokenBatch,
): Promise<{ predictions: Int32Array; stateBytes: number }> {
  const { batchSize, seqLen } = batch;
  const column = new Int32Array(batchSize);
  let state = model.initState(batchSize);
  try {
    for (let position = 0; position < seqLen - 1; position++) {
      for (let row = 0; row < batchSize; row++) column[row] = batch.inputs[row * seqLen + position] as number;
      const tokens = tf.tensor1d(column, 'int32');
      const { logits, state: next } = model.step(tokens, state);
      tf.dispose([tokens, logits, state as unknown as tf.TensorContainer]);
      state = next;
    }
    for (let row = 0; row < batchSize; row++) column[row] = batch.inputs[row * seqLen + seqLen - 1] as number;
    const tokens = tf.tensor1d(column, 'int32');
    const { logits, state: next } = model.step(tokens, state);
    const predictions = await readInt32(tf.tidy(() => logits.argMax(1)));
    tf.dispose([tokens, logits, state as unknown as tf.TensorContainer]);
    state = next;
    return { predictions, stateBytes: stateBytes(state) };
  } finally {
    tf.dispose(state as unknown as tf.TensorContainer);
  }
}

/**
 * Reads and disposes a tensor. Asynchronously: webgpu cannot read the GPU synchronously (tfjs's
 * `dataSync` there needs a browser's OffscreenCanvas and fails in Node).
 */
async function readInt32(tensor: tf.Tensor): Promise<Int32Array> {
  try {
    const values = (await tensor.data()) as Int32Array;
    // The values were computed by everything recorded since the last check: a GPU failure among
    // them (an out-of-memory, a binding over the device's limit) makes them garbage.
    throwIfWebgpuFailed('evaluation');
    return values;
  } catch (error) {
    throwIfWebgpuFailed('evaluation');
    throw error;
  } finally {
    tensor.dispose();
  }
}

/** Bytes held by the tensors of a model state. */
export function stateBytes(state: ModelState): number {
  const visit = (value: MixerState | tf.Tensor | number): number => {
    if (typeof value === 'number') return 0;
    if (value instanceof tf.Tensor) return value.size * 4;
    return Object.values(value).reduce((sum: number, inner) => sum + visit(inner), 0);
  };
  return state.layers.reduce((sum, layer) => sum + visit(layer), 0);
}
