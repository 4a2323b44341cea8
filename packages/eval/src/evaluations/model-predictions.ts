import {
  type LanguageModel,
  type MixerState,
  type ModelState,
  type TokenBatch,
  throwIfWebgpuFailed,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { type ReplayedSteps, StepModeReplay } from './step-mode-replay.js';

/**
 * Correct and counted predictions at the batch's masked positions, with the parallel form (the
 * head in row chunks that fit the backend's binding limit: `LanguageModel.predict`).
 */
export async function maskedAccuracyByForward(
  model: LanguageModel,
  batch: TokenBatch,
  headChunkBytes?: number,
): Promise<{ correct: number; counted: number }> {
  const predictions = await readChecked<Int32Array>(
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
 * sliding windows) and the prefix is never re-run. Also returns the last step's logits
 * ([batch × vocab], row-major; the predictions are their argmax) and the state's size at the end.
 * With `replay` (on webgpu), steps whose commands do not change from token to token are recorded
 * once and replayed without tfjs (step-mode-replay.ts): the same kernels on the same data.
 */
export async function lastPredictionsByStep(
  model: LanguageModel,
  batch: TokenBatch,
  replay: StepModeReplay = new StepModeReplay('off'),
): Promise<{ predictions: Int32Array; logits: Float32Array; stateBytes: number }> {
  const { batchSize, seqLen } = batch;
  const columnAt = (position: number, into = new Int32Array(batchSize)) => {
    for (let row = 0; row < batchSize; row++) into[row] = batch.inputs[row * seqLen + position] as number;
    return into;
  };
  const column = new Int32Array(batchSize);
  let state = model.initState(batchSize);
  let replays: ReplayedSteps | undefined;
  try {
    let position = 0;
    while (position < seqLen - 1) {
      if (replays !== undefined) {
        await replay.replayStep(replays, columnAt(position, column));
        position += 1;
      } else if (replay.shouldRecordAt(model, state, position, seqLen)) {
        const recorded = replay.recordPair(model, state, position, [columnAt(position), columnAt(position + 1)]);
        state = recorded.state;
        replays = recorded.replays;
        position += recorded.steps;
      } else {
        state = stepThroughTfjs(model, state, columnAt(position, column));
        position += 1;
      }
    }
    const last = columnAt(seqLen - 1, column);
    let logits: Float32Array;
    if (replays !== undefined) logits = await replay.replayLast(replays, last);
    else {
      const tokens = tf.tensor1d(last, 'int32');
      const stepped = model.step(tokens, state);
      tf.dispose([tokens, state as unknown as tf.TensorContainer]);
      state = stepped.state;
      logits = await readChecked<Float32Array>(stepped.logits);
    }
    return { predictions: argmaxRows(logits, batchSize), logits, stateBytes: stateBytes(state) };
  } finally {
    replays?.plan.dispose();
    tf.dispose(state as unknown as tf.TensorContainer);
  }
}

/** One step through tfjs's ops; the old state is disposed. */
function stepThroughTfjs(model: LanguageModel, state: ModelState, column: Int32Array): ModelState {
  const tokens = tf.tensor1d(column, 'int32');
  const { logits, state: next } = model.step(tokens, state);
  tf.dispose([tokens, logits, state as unknown as tf.TensorContainer]);
  return next;
}

/**
 * Reads and disposes a tensor (int32 or float32, as `T` says). Asynchronously: webgpu cannot read
 * the GPU synchronously (tfjs's `dataSync` there needs a browser's OffscreenCanvas and fails in Node).
 */
async function readChecked<T extends Int32Array | Float32Array>(tensor: tf.Tensor): Promise<T> {
  try {
    const values = (await tensor.data()) as T;
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

/** The index of each row's largest value (the first, on ties, as tfjs's argMax). */
function argmaxRows(values: Float32Array, rows: number): Int32Array {
  const width = values.length / rows;
  const result = new Int32Array(rows);
  for (let row = 0; row < rows; row++) {
    let best = 0;
    for (let column = 1; column < width; column++) {
      if ((values[row * width + column] as number) > (values[row * width + best] as number)) best = column;
    }
    result[row] = best;
  }
  return result;
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
