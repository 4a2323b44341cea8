import { type HiddenOptions, headChunkRows, type LanguageModel, sumPairwise } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { gatherRows } from './gather-rows.js';
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
 * With `supervision.rows` the hidden states of those positions are gathered first and the head
 * runs on them alone (supervised-rows.ts): the same loss and gradients, far fewer logits when a
 * task supervises few positions. `hiddenOptions` go to the model's layers (training steps:
 * activation checkpointing).
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
    // With supervised rows the head sees only those positions: the others add nothing to the loss.
    const rows =
      supervision.rows === undefined
        ? (hidden.reshape([batch * length, dModel]) as tf.Tensor2D)
        : gatherRows(hidden.reshape([batch * length, dModel]) as tf.Tensor2D, supervision.rows);
    const targets = supervision.targets.reshape([-1]) as tf.Tensor1D;
    const mask = supervision.mask.reshape([-1]) as tf.Tensor1D;
    const chunks = headChunkRows(rows.shape[0], model.config.vocab_size, budgetBytes);
    if (chunks.length === 1) {
      const logits = model.headLogits(rows);
      return { loss: maskedCrossEntropy(logits, { targets, mask }), ...maskedCorrect(logits, { targets, mask }) };
    }
    const rowChunks = tf.split(rows, chunks) as tf.Tensor2D[];
    const targetChunks = tf.split(targets, chunks);
    const maskChunks = tf.split(mask, chunks);
    const sums: tf.Scalar[] = [];
    const hits: tf.Scalar[] = [];
    rowChunks.forEach((chunk, index) => {
      const chunkTargets = targetChunks[index] as tf.Tensor1D;
      const chunkMask = maskChunks[index] as tf.Tensor1D;
      const logits = model.headLogits(chunk);
      sums.push(maskedCrossEntropySum(logits, chunkTargets, chunkMask));
      hits.push(maskedCorrect(logits, { targets: chunkTargets, mask: chunkMask }).correct);
      // Each chunk's logits go once its scalars exist (the gradient tape keeps what backward needs).
      logits.dispose();
    });
    const counted = mask.sum() as tf.Scalar;
    return {
      loss: sumPairwise(sums).div(tf.maximum(counted, 1)) as tf.Scalar,
      correct: sumPairwise(hits),
      counted,
    };
  });
}
