import * as tf from '@tensorflow/tfjs';
import { currentBackendHas } from '../scan/kernels/register-once.js';
import { CAUSAL_CONV_KERNEL, fusedCausalDepthwiseConv1d, MAX_FUSED_TAPS } from '../webgpu/causal-conv-wgsl.js';

/**
 * Causal depthwise 1-D convolution over time, as PyTorch's `Conv1d(C, C, K, groups=C,
 * padding=K-1)` truncated to the first L outputs. Written as K shifted multiply-adds: the
 * kernels are tiny (K ≤ 4 here) and the wasm backend has no depthwise-conv gradient.
 *
 * x [B, L, C]; weight [C, 1, K] (PyTorch layout); bias [C].
 */
export function causalDepthwiseConv1d(x: tf.Tensor3D, weight: tf.Tensor3D, bias?: tf.Tensor1D): tf.Tensor3D {
  // On webgpu three fused kernels replace the ~50 small dispatches of the form below (webgpu/causal-conv-wgsl.ts).
  if (currentBackendHas(CAUSAL_CONV_KERNEL) && (weight.shape[2] as number) <= MAX_FUSED_TAPS) {
    return fusedCausalDepthwiseConv1d(x, weight, bias);
  }
  return tf.tidy(() => {
    const [batch, length, channels] = x.shape;
    const kernelSize = weight.shape[2];
    const padded = tf.pad(x, [
      [0, 0],
      [kernelSize - 1, 0],
      [0, 0],
    ]);
    const taps = weight.reshape([channels, kernelSize]).transpose() as tf.Tensor2D; // [K, C]
    let out: tf.Tensor3D | undefined;
    for (let k = 0; k < kernelSize; k++) {
      const shifted = padded.slice([0, k, 0], [batch, length, channels]) as tf.Tensor3D;
      const term = shifted.mul(taps.slice([k, 0], [1, channels]).reshape([channels])) as tf.Tensor3D;
      out = out ? (out.add(term) as tf.Tensor3D) : term;
    }
    return (bias ? (out as tf.Tensor3D).add(bias) : out) as tf.Tensor3D;
  });
}

/**
 * One step of the same convolution. `window` [B, K-1, C] holds the previous K-1 inputs
 * (zeros at the start); returns the output [B, C] and the next window.
 */
export function causalDepthwiseConv1dStep(
  x: tf.Tensor2D,
  window: tf.Tensor3D,
  weight: tf.Tensor3D,
  bias?: tf.Tensor1D,
): { y: tf.Tensor2D; window: tf.Tensor3D } {
  return tf.tidy(() => {
    const [batch, channels] = x.shape;
    const kernelSize = weight.shape[2];
    const full = tf.concat([window, x.reshape([batch, 1, channels])], 1); // [B, K, C]
    const taps = weight.reshape([channels, kernelSize]).transpose(); // [K, C]
    let y = full.mul(taps).sum(1) as tf.Tensor2D;
    if (bias) y = y.add(bias);
    return { y, window: full.slice([0, 1, 0], [batch, kernelSize - 1, channels]) as tf.Tensor3D };
  });
}
