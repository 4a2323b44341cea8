import * as tf from '@tensorflow/tfjs';
import { LINEAR_RECURRENCE_GRAD_KERNEL, LINEAR_RECURRENCE_KERNEL } from './kernels/linear-recurrence-kernel.js';
import { linearScan } from './linear-scan.js';
import { assertFusedAvailable, defaultScanImplementation, type ScanImplementation } from './scan-implementation.js';

export type RecurrenceImplementation = ScanImplementation;

/**
 * h_t = a_t ⊙ h_{t−1} + b_t over axis 1 with h_{−1} = 0, for decay a and input b [B, L, F];
 * returns every h_t [B, L, F], differentiable in both a and b. The hot loop of RG-LRU.
 *
 * `fused` (default on cpu, wasm and tensorflow, whose tensors live in CPU memory): the tfjs kernels
 * `InterleaveLinearRecurrence`/`…Grad` registered for those backends (kernels/), one pass
 * forward and one backward over contiguous arrays inside `tf.customGrad`, instead of the
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
  const run = tf.customGrad((a, b, save) => {
    const h = tf.engine().runKernel(LINEAR_RECURRENCE_KERNEL, { a, b } as tf.NamedTensorMap) as tf.Tensor3D;
    (save as tf.GradSaveFunc)([a as tf.Tensor, h]);
    return {
      value: h,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [as, hs] = saved as [tf.Tensor, tf.Tensor];
        return tf.engine().runKernel(LINEAR_RECURRENCE_GRAD_KERNEL, { a: as, h: hs, dy }) as tf.Tensor[];
      },
    };
  });
  return run(decay, input) as tf.Tensor3D;
}
