import * as tf from '@tensorflow/tfjs';

/**
 * Matrix product over the last two axes, with optional transposes. On the CPU backends it never
 * hands a transpose flag to the backend. Measured on tfjs-wasm 4.22 (2 cores, 2048×64×64):
 * plain a·b 1.0 ms, a·bᵀ 9.7 ms, aᵀ·b 26.8 ms — an explicit transpose costs ~0.2 ms. The
 * gradient is written out for the same reason (tfjs's own matMul gradient uses the flags).
 * On webgpu the flags are free (the kernel reads its operands transposed) while each explicit
 * transpose is one more dispatch, ~30–60 µs of CPU time per op on the H200 (docs/gpu.md,
 * "Per-op cost"): there the flags are passed through, forward and backward.
 * Batch axes, if any, must match exactly.
 */
export function matmul<T extends tf.Tensor>(a: T, b: tf.Tensor, transposeA = false, transposeB = false): T {
  if (tf.getBackend() === 'webgpu') return matmulWithFlags(a, b, transposeA, transposeB);
  const product = tf.customGrad((left, right, save) => {
    const lhs = transposeA ? swapLastTwo(left as tf.Tensor) : (left as tf.Tensor);
    const rhs = transposeB ? swapLastTwo(right as tf.Tensor) : (right as tf.Tensor);
    (save as tf.GradSaveFunc)([lhs, rhs]);
    return {
      value: tf.matMul(lhs, rhs),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedLhs, savedRhs] = saved as [tf.Tensor, tf.Tensor];
        const dLhs = tf.matMul(dy, swapLastTwo(savedRhs));
        const dRhs = tf.matMul(swapLastTwo(savedLhs), dy);
        return [transposeA ? swapLastTwo(dLhs) : dLhs, transposeB ? swapLastTwo(dRhs) : dRhs];
      },
    };
  });
  return product(a, b) as T;
}

/** op(A)·op(B) with the transposes as flags; each gradient is one flagged product too. */
function matmulWithFlags<T extends tf.Tensor>(a: T, b: tf.Tensor, transposeA: boolean, transposeB: boolean): T {
  const product = tf.customGrad((left, right, save) => {
    (save as tf.GradSaveFunc)([left as tf.Tensor, right as tf.Tensor]);
    return {
      value: tf.matMul(left as tf.Tensor, right as tf.Tensor, transposeA, transposeB),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [lhs, rhs] = saved as [tf.Tensor, tf.Tensor];
        // C = op(A)·op(B): dA = dC·op(B)ᵀ (transposed back when A was), dB likewise.
        if (!transposeA && !transposeB) return [tf.matMul(dy, rhs, false, true), tf.matMul(lhs, dy, true, false)];
        if (!transposeA) return [tf.matMul(dy, rhs), tf.matMul(dy, lhs, true, false)];
        if (!transposeB) return [tf.matMul(rhs, dy, false, true), tf.matMul(lhs, dy)];
        return [tf.matMul(rhs, dy, true, true), tf.matMul(dy, lhs, true, true)];
      },
    };
  });
  return product(a, b) as T;
}

function swapLastTwo(x: tf.Tensor): tf.Tensor {
  const axes = x.shape.map((_, index) => index);
  const last = axes.length - 1;
  [axes[last - 1], axes[last]] = [axes[last] as number, axes[last - 1] as number];
  return tf.transpose(x, axes);
}
