import { type HiddenOptions, headChunkRows, type LanguageModel } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { maskedCorrect, maskedCrossEntropy, maskedCrossEntropySum, type Supervision } from './objective.js';

/** The training objective of one batch and its accuracy counts (all scalars). */
export interface HeadObjective {
  /** Mean masked cross-entropy over all counted positions. */
  readonly loss: tf.Scalar;
  readonly correct: tf.Scalar;
  readonly counted: tf.Scalar;
}

/**
 * Runs the model on `inputs` and scores its logits against `supervision`. The logits [B·L, V] are
 * the largest tensor of a step and can exceed the backend's binding limit (webgpu: 2 GiB at the
 * reference hybrid's B16 L4096), so the head, the cross-entropy and the arg-max run in row chunks
 * sized by `headChunkRows` (core's head-chunks.ts; `budgetBytes` overrides the backend's limit).
 * The loss is Σ over chunks of the masked sums, divided once by the total count: the same value
 * and gradients as the unchunked mean. When everything fits, one chunk is the unchunked path.
 * `hiddenOptions` go to the model's layers (training steps: activation checkpointing).
 */
export function headObjective(
  model: LanguageModel,
  inputs: tf.Tensor2D,
  supervision: Supervision,
  budgetBytes?: number,
  hiddenOptions?: HiddenOptions,
): HeadObjective {
  return tf.tidy(() => {
    const hidden = model.hidden(inputs, hiddenOptions);
    const [batch, length, dModel] = hidden.shape;
    const chunks = headChunkRows(batch * length, model.config.vocab_size, budgetBytes);
    if (chunks.length === 1) {
      const logits = model.headLogits(hidden);
      return { loss: maskedCrossEntropy(logits, supervision), ...maskedCorrect(logits, supervision) };
    }
    const hiddenChunks = tf.split(hidden.reshape([batch * length, dModel]) as tf.Tensor2D, chunks) as tf.Tensor2D[];
    const targetChunks = tf.split(supervision.targets.reshape([-1]) as tf.Tensor1D, chunks);
    const maskChunks = tf.split(supervision.mask.reshape([-1]) as tf.Tensor1D, chunks);
    const sums: tf.Scalar[] = [];
    const hits: tf.Scalar[] = [];
    hiddenChunks.forEach((chunk, index) => {
      const targets = targetChunks[index] as tf.Tensor1D;
      const mask = maskChunks[index] as tf.Tensor1D;
      const logits = model.headLogits(chunk);
      sums.push(maskedCrossEntropySum(logits, targets, mask));
      hits.push(maskedCorrect(logits, { targets, mask }).correct);
      // Each chunk's logits go once its scalars exist (the gradient tape keeps what backward needs).
      logits.dispose();
    });
    const counted = supervision.mask.sum() as tf.Scalar;
    return {
      loss: tf.addN(sums).div(tf.maximum(counted, 1)) as tf.Scalar,
      correct: tf.addN(hits) as tf.Scalar,
      counted,
    };
  });
}
