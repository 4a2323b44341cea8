import { sequencesPerCall, sumPairwise } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { SELECTIVE_SCAN_GRAD_KERNEL, SELECTIVE_SCAN_KERNEL } from './kernels/selective-scan-kernel.js';
import { selectiveScanLargestBinding } from './kernels/webgpu/selective-scan-wgsl.js';
import { linearScan } from './linear-scan.js';
import { assertFusedAvailable, defaultScanImplementation, type ScanImplementation } from './scan-implementation.js';

/**
 * The selective scan of Mamba (docs/design.md#mamba), without the D skip:
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
 * `fused`: the tfjs kernels `InterleaveSelectiveScan`/`…Grad` registered for cpu, wasm and
 * tensorflow (kernels/, split by channel over worker threads) and for webgpu (kernels/webgpu/, WGSL), one
 * pass over the data forward and one (recomputing) backward — never materialising the
 * [B, L, d_inner, d_state] decay and drive tensors as tfjs ops would. On webgpu a batch whose
 * buffers would pass the GPU's storage-binding cap runs in chunks of sequences. `ops`: the portable tf-op formulation (a parallel scan), for every
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
  const [batch, length, dInner] = inputs.x.shape;
  const dState = inputs.a.shape[1];
  const perCall = sequencesPerCall(
    batch,
    selectiveScanLargestBinding({ batch: 1, length, dInner, dState }),
    `the selective scan over [${batch}, ${length}, ${dInner}] with d_state ${dState}`,
  );
  const scan = tf.customGrad((x, dt, a, b, c, save) => {
    (save as tf.GradSaveFunc)([x, dt, a, b, c] as tf.Tensor[]);
    const value = tf.tidy(() =>
      tf.concat(
        inBatchChunks([x, dt, b, c] as tf.Tensor[], perCall).map(
          ([xs, dts, bs, cs]) =>
            tf
              .engine()
              .runKernel(SELECTIVE_SCAN_KERNEL, { x: xs, dt: dts, a, b: bs, c: cs } as tf.NamedTensorMap) as tf.Tensor,
        ),
        0,
      ),
    );
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xs, dts, as, bs, cs] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
        const chunks = inBatchChunks([xs, dts, bs, cs, dy], perCall).map(
          ([x, dt, b, c, dyChunk]) =>
            tf.engine().runKernel(SELECTIVE_SCAN_GRAD_KERNEL, {
              x,
              dt,
              a: as,
              b,
              c,
              dy: dyChunk,
            } as tf.NamedTensorMap) as tf.Tensor[],
        );
        if (chunks.length === 1) return chunks[0] as tf.Tensor[];
        const gather = (index: number) => chunks.map((grads) => grads[index] as tf.Tensor);
        return [
          tf.concat(gather(0), 0),
          tf.concat(gather(1), 0),
          sumPairwise(gather(2)),
          tf.concat(gather(3), 0),
          tf.concat(gather(4), 0),
        ];
      },
    };
  });
  return scan(inputs.x, inputs.dt, inputs.a, inputs.b, inputs.c) as tf.Tensor3D;
}

/** The tensors cut along axis 0 into pieces of at most `size` (the tensors themselves when one piece suffices). */
export function inBatchChunks(tensors: tf.Tensor[], size: number): tf.Tensor[][] {
  const batch = (tensors[0] as tf.Tensor).shape[0] as number;
  if (size >= batch) return [tensors];
  const sizes = Array.from({ length: Math.ceil(batch / size) }, (_, i) => Math.min(size, batch - i * size));
  const pieces = tensors.map((tensor) => tf.split(tensor, sizes, 0));
  return sizes.map((_, chunk) => pieces.map((split) => split[chunk] as tf.Tensor));
}
