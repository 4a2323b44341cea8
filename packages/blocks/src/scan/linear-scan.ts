import * as tf from '@tensorflow/tfjs';

/**
 * The linear recurrence h_t = a_t ⊙ h_{t−1} + b_t over axis 1, with h_{−1} = 0, for
 * a, b [B, L, F]. Returns every h_t, [B, L, F].
 *
 * This is the one place the Mamba selective scan (and later RG-LRU) runs its recurrence, so a
 * fused kernel can replace it without touching the blocks. This portable version is a
 * Hillis–Steele parallel scan: log2(L) rounds of whole-tensor ops instead of L rounds of tiny
 * ones, and numerically safe because it only ever multiplies decays (all in [0, 1]).
 */
export function linearScan(decay: tf.Tensor3D, input: tf.Tensor3D): tf.Tensor3D {
  return tf.tidy(() => {
    const [batch, length, features] = decay.shape;
    let a: tf.Tensor3D = decay;
    let b: tf.Tensor3D = input;
    for (let offset = 1; offset < length; offset *= 2) {
      const kept = length - offset;
      // Element t absorbs the segment ending at t − offset; positions before it see the identity map.
      const previousB = tf.pad(b.slice([0, 0, 0], [batch, kept, features]), [
        [0, 0],
        [offset, 0],
        [0, 0],
      ]);
      const nextB = a.mul(previousB).add(b) as tf.Tensor3D;
      if (offset * 2 < length) {
        const previousA = tf.pad(
          a.slice([0, 0, 0], [batch, kept, features]),
          [
            [0, 0],
            [offset, 0],
            [0, 0],
          ],
          1,
        );
        a = a.mul(previousA) as tf.Tensor3D;
      }
      b = nextB;
    }
    return b;
  });
}
