import * as tf from '@tensorflow/tfjs';
import { SELECTIVE_SCAN_GRAD_KERNEL, SELECTIVE_SCAN_KERNEL } from './kernels/selective-scan-kernel.js';
import { linearScan } from './linear-scan.js';
import { assertFusedAvailable, defaultScanImplementation, type ScanImplementation } from './scan-implementation.js';

/**
 * The selective scan of Mamba (SPEC §2.1), without the D skip:
 *   h_t = exp(Δ_t ⊗ A) ⊙ h_{t−1} + (Δ_t ⊙ x_t) ⊗ B_t,   y_t = h_t · C_t
 * x, dt [B, L, d_inner]; a = −exp(A_log) [d_inner, d_state]; b, c [B, L, d_state] → y [B, L, d_inner].
 */
export interface SelectiveScanInputs {
  x: tf.Tensor3D;
  dt: tf.Tensor3D;
  a: tf.Tensor2D;
  b: tf.Tensor3D;
  c: tf.Tensor3D;
}

export type { ScanImplementation } from './scan-implementation.js';

/**
 * `fused`: the tfjs kernels `InterleaveSelectiveScan`/`…Grad` registered for cpu, wasm and tensorflow
 * (kernels/), one pass over the data forward and one (recomputing) backward, split by channel
 * over worker threads — never materialising the [B, L, d_inner, d_state] decay and drive
 * tensors as tfjs ops would. `ops`: the portable tf-op formulation (a parallel scan), for every
 * other backend. `INTERLEAVE_SCAN=fused|ops` forces one.
 */
export function selectiveScan(
  inputs: SelectiveScanInputs,
  implementation: ScanImplementation = defaultScanImplementation(SELECTIVE_SCAN_KERNEL),
): tf.Tensor3D {
  return implementation === 'fused' ? fusedSelectiveScan(inputs) : selectiveScanWithOps(inputs);
}

export function selectiveScanWithOps({ x, dt, a, b, c }: SelectiveScanInputs): tf.Tensor3D {
  return tf.tidy(() => {
    const [batch, length, dInner] = x.shape;
    const dState = a.shape[1];
    const decay = tf.exp(dt.expandDims(3).mul(a)); // [B, L, d_inner, d_state]
    const drive = dt.mul(x).expandDims(3).mul(b.expandDims(2));
    const flat: [number, number, number] = [batch, length, dInner * dState];
    const h = linearScan(decay.reshape(flat), drive.reshape(flat)).reshape([batch, length, dInner, dState]);
    return h.mul(c.expandDims(2)).sum(3) as tf.Tensor3D;
  });
}

function fusedSelectiveScan(inputs: SelectiveScanInputs): tf.Tensor3D {
  assertFusedAvailable(SELECTIVE_SCAN_KERNEL);
  const scan = tf.customGrad((x, dt, a, b, c, save) => {
    (save as tf.GradSaveFunc)([x, dt, a, b, c] as tf.Tensor[]);
    return {
      value: tf.engine().runKernel(SELECTIVE_SCAN_KERNEL, { x, dt, a, b, c } as tf.NamedTensorMap) as tf.Tensor3D,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, dts, as, bs, cs] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
        const named = { x: xs, dt: dts, a: as, b: bs, c: cs, dy };
        return tf.engine().runKernel(SELECTIVE_SCAN_GRAD_KERNEL, named) as tf.Tensor[];
      },
    };
  });
  return scan(inputs.x, inputs.dt, inputs.a, inputs.b, inputs.c) as tf.Tensor3D;
}
