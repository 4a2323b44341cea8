import { sequencesPerCall } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { LINEAR_RECURRENCE_GRAD_KERNEL, LINEAR_RECURRENCE_KERNEL } from './kernels/linear-recurrence-kernel.js';
import { linearScan } from './linear-scan.js';
import { assertFusedAvailable, defaultScanImplementation, type ScanImplementation } from './scan-implementation.js';
import { inBatchChunks } from './selective-scan.js';

export type RecurrenceImplementation = ScanImplementation;

/**
 * h_t = a_t ⊙ h_{t−1} + b_t over axis 1 with h_{−1} = 0, for decay a and input b [B, L, F];
 * returns every h_t [B, L, F], differentiable in both a and b. The hot loop of RG-LRU.
 *
 * `fused` (default on cpu, wasm and tensorflow, whose tensors live in CPU memory, and on webgpu):
 * the tfjs kernels `InterleaveLinearRecurrence`/`…Grad` registered for those backends (kernels/,
 * and WGSL in kernels/webgpu/), one pass forward and one backward inside `tf.customGrad`, instead of the
 * 2·log2(L) rounds of whole-tensor ops that `ops` (`linearScan`, the portable parallel scan,
 * for every other backend) costs. `INTERLEAVE_SCAN=fused|ops` forces one, as for Mamba.
 */
export function linearRecurrence(
  decay: tf.Tensor3D,
  input: tf.Tensor3D,
  implementation: RecurrenceImplementation = defaultScanImplementation(LINEAR_RECURRENCE_KERNEL),
): tf.Tensor3D {
  return implementation === 'fused' ? fusedLinearRecurrence(decay, input) : linearScan(decay, input);
}

function fusedLinearRecurrence(decay: tf.Tensor3D, input: tf.Tensor3D): tf.Tensor3D {
  assertFusedAvailable(LINEAR_RECURRENCE_KERNEL);
  const [batch, length, features] = decay.shape;
  const perCall = sequencesPerCall(
    batch,
    length * features,
    `the linear recurrence over [${batch}, ${length}, ${features}]`,
  );
  const run = tf.customGrad((a, b, save) => {
    const h = tf.tidy(() =>
      tf.concat(
        inBatchChunks([a as tf.Tensor, b as tf.Tensor], perCall).map(
          ([as, bs]) =>
            tf.engine().runKernel(LINEAR_RECURRENCE_KERNEL, { a: as, b: bs } as tf.NamedTensorMap) as tf.Tensor,
        ),
        0,
      ),
    );
    (save as tf.GradSaveFunc)([a as tf.Tensor, h]);
    return {
      value: h,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const chunks = inBatchChunks([...(saved as tf.Tensor[]), dy], perCall).map(
          ([as, hs, dys]) =>
            tf
              .engine()
              .runKernel(LINEAR_RECURRENCE_GRAD_KERNEL, { a: as, h: hs, dy: dys } as tf.NamedTensorMap) as tf.Tensor[],
        );
        if (chunks.length === 1) return chunks[0] as tf.Tensor[];
        return [0, 1].map((index) =>
          tf.concat(
            chunks.map((grads) => grads[index] as tf.Tensor),
            0,
          ),
        );
      },
    };
  });
  return run(decay, input) as tf.Tensor3D;
}
