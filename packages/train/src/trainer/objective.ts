import * as tf from '@tensorflow/tfjs';
import { fusedCrossEntropyAvailable, fusedMaskedCrossEntropy } from './cross-entropy-wgsl.js';

/** Targets and the positions that count, as tensors: targets [B, L] int32, mask [B, L] float32. */
export interface Supervision {
  targets: tf.Tensor2D;
  mask: tf.Tensor2D;
}

/**
 * Mean cross-entropy over the positions where mask = 1 (MQAR: query positions only). The
 * gradient, (softmax − onehot) · mask / count, is written out: tfjs would differentiate the
 * max inside log-sum-exp through a broadcast `equal`, which costs ~14 ms per call on wasm.
 * On webgpu two fused kernels (cross-entropy-wgsl.ts) replace the tf ops.
 */
export function maskedCrossEntropy(logits: tf.Tensor3D, supervision: Supervision): tf.Scalar {
  if (fusedCrossEntropyAvailable()) {
    const { targets, mask } = supervision;
    return tf.tidy(() =>
      fusedMaskedCrossEntropy(
        logits.reshape([-1, logits.shape[2]]),
        targets.reshape([-1]) as tf.Tensor1D,
        mask.reshape([-1]) as tf.Tensor1D,
      ),
    );
  }
  return maskedCrossEntropyWithOps(logits, supervision);
}

/** The tf-op form of `maskedCrossEntropy`, on every backend. */
export function maskedCrossEntropyWithOps(logits: tf.Tensor3D, { targets, mask }: Supervision): tf.Scalar {
  const vocab = logits.shape[2];
  const loss = tf.customGrad((logitsArg, save) => {
    const flatLogits = (logitsArg as tf.Tensor).reshape([-1, vocab]) as tf.Tensor2D;
    const flatMask = mask.reshape([-1, 1]);
    const oneHot = tf.oneHot(targets.reshape([-1]) as tf.Tensor1D, vocab);
    const count = tf.maximum(flatMask.sum(), 1);
    const logNormaliser = tf.logSumExp(flatLogits, 1, true);
    const perPosition = logNormaliser.sub(flatLogits.mul(oneHot).sum(1, true));
    (save as tf.GradSaveFunc)([flatLogits, flatMask, oneHot, count]);
    return {
      value: perPosition.mul(flatMask).sum().div(count) as tf.Scalar,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedLogits, savedMask, savedOneHot, savedCount] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
        const weight = savedMask.div(savedCount).mul(dy);
        return tf.softmax(savedLogits).sub(savedOneHot).mul(weight).reshape(logits.shape);
      },
    };
  });
  return loss(logits) as tf.Scalar;
}

/** Counts of correct arg-max predictions and of counted positions (both scalars). */
export function maskedCorrect(
  logits: tf.Tensor3D,
  { targets, mask }: Supervision,
): { correct: tf.Scalar; counted: tf.Scalar } {
  return tf.tidy(() => {
    const hits = tf.equal(logits.argMax(2), targets).toFloat().mul(mask);
    return { correct: hits.sum() as tf.Scalar, counted: mask.sum() as tf.Scalar };
  });
}
