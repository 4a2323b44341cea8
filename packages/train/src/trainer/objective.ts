import * as tf from '@tensorflow/tfjs';
import { fusedCrossEntropyAvailable, fusedMaskedCrossEntropySum } from './cross-entropy-wgsl.js';

/**
 * Targets and the positions that count, as tensors: targets [B, L] int32, mask [B, L] float32.
 * With `rows` (int32 [C], flat indices b·L + t: supervised-rows.ts), the head runs on those
 * positions alone and targets and mask are [C], one per row.
 */
export interface Supervision {
  targets: tf.Tensor;
  mask: tf.Tensor;
  rows?: tf.Tensor1D;
}

/**
 * Mean cross-entropy over the positions where mask = 1 (MQAR: query positions only): the masked
 * sum (`maskedCrossEntropySum`) over the count of counted positions (at least 1).
 */
export function maskedCrossEntropy(logits: tf.Tensor2D | tf.Tensor3D, supervision: Supervision): tf.Scalar {
  return meanOver(logits, supervision, maskedCrossEntropySum);
}

/** The tf-op form of `maskedCrossEntropy`, on every backend. */
export function maskedCrossEntropyWithOps(logits: tf.Tensor2D | tf.Tensor3D, supervision: Supervision): tf.Scalar {
  return meanOver(logits, supervision, maskedCrossEntropySumWithOps);
}

type MaskedSum = (logits: tf.Tensor2D, targets: tf.Tensor1D, mask: tf.Tensor1D) => tf.Scalar;

function meanOver(logits: tf.Tensor2D | tf.Tensor3D, { targets, mask }: Supervision, maskedSum: MaskedSum): tf.Scalar {
  return tf.tidy(() => {
    const sum = maskedSum(
      logits.reshape([-1, logits.shape[logits.rank - 1] as number]),
      targets.reshape([-1]) as tf.Tensor1D,
      mask.reshape([-1]) as tf.Tensor1D,
    );
    return sum.div(tf.maximum(mask.sum(), 1)) as tf.Scalar;
  });
}

/**
 * Σ over rows where mask = 1 of the cross-entropy of logits [rows, V] against targets [rows]. The
 * gradient, (softmax − onehot) · mask, is written out: tfjs would differentiate the max inside
 * log-sum-exp through a broadcast `equal`, which costs ~14 ms per call on wasm. On webgpu two
 * fused kernels (cross-entropy-wgsl.ts) replace the tf ops.
 */
export function maskedCrossEntropySum(logits: tf.Tensor2D, targets: tf.Tensor1D, mask: tf.Tensor1D): tf.Scalar {
  if (fusedCrossEntropyAvailable()) return fusedMaskedCrossEntropySum(logits, targets, mask);
  return maskedCrossEntropySumWithOps(logits, targets, mask);
}

/** The tf-op form of `maskedCrossEntropySum`, on every backend. */
export function maskedCrossEntropySumWithOps(logits: tf.Tensor2D, targets: tf.Tensor1D, mask: tf.Tensor1D): tf.Scalar {
  const vocab = logits.shape[1];
  const loss = tf.customGrad((logitsArg, save) => {
    const rowLogits = logitsArg as tf.Tensor2D;
    const rowMask = mask.reshape([-1, 1]);
    const oneHot = tf.oneHot(targets, vocab);
    const logNormaliser = tf.logSumExp(rowLogits, 1, true);
    const perPosition = logNormaliser.sub(rowLogits.mul(oneHot).sum(1, true));
    (save as tf.GradSaveFunc)([rowLogits, rowMask, oneHot]);
    return {
      value: perPosition.mul(rowMask).sum() as tf.Scalar,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedLogits, savedMask, savedOneHot] = saved as [tf.Tensor, tf.Tensor, tf.Tensor];
        return tf.softmax(savedLogits).sub(savedOneHot).mul(savedMask.mul(dy));
      },
    };
  });
  return loss(logits) as tf.Scalar;
}

/** Counts of correct arg-max predictions (over the last axis) and of counted positions (both scalars). */
export function maskedCorrect(
  logits: tf.Tensor2D | tf.Tensor3D,
  { targets, mask }: { targets: tf.Tensor; mask: tf.Tensor },
): { correct: tf.Scalar; counted: tf.Scalar } {
  return tf.tidy(() => {
    const hits = tf.equal(logits.argMax(-1), targets).toFloat().mul(mask);
    return { correct: hits.sum() as tf.Scalar, counted: mask.sum() as tf.Scalar };
  });
}
