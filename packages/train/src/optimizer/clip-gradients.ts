import * as tf from '@tensorflow/tfjs';

/**
 * Scales all gradients together so their global L2 norm is at most `maxNorm` (as PyTorch's
 * `clip_grad_norm_`); returns the new gradients and the norm before clipping. Disposes nothing.
 */
export function clipByGlobalNorm(
  gradients: Readonly<Record<string, tf.Tensor>>,
  maxNorm: number | null,
): { gradients: Record<string, tf.Tensor>; norm: tf.Scalar } {
  const tensors = Object.values(gradients);
  // Summed one by one: tf.addN over every parameter's square needs more storage buffers in one
  // webgpu shader than a device allows (18 against a limit of 8 on an H100 under Dawn).
  const norm = tf.tidy(() => {
    const squares = tensors.map((gradient) => gradient.square().sum());
    return tf.sqrt(squares.reduce((total, square) => total.add(square), tf.scalar(0))) as tf.Scalar;
  });
  if (maxNorm === null) return { gradients: { ...gradients }, norm };
  const scale = tf.tidy(() => tf.minimum(tf.scalar(1), tf.scalar(maxNorm).div(norm.add(1e-6))));
  const clipped: Record<string, tf.Tensor> = {};
  for (const [name, gradient] of Object.entries(gradients)) clipped[name] = gradient.mul(scale);
  scale.dispose();
  return { gradients: clipped, norm };
}
