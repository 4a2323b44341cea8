import { InterleaveError, sequencesPerCall, storageBindingLimitBytes } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { currentBackendHas } from '../scan/kernels/register-once.js';
import { inBatchChunks } from '../scan/selective-scan.js';
import {
  BANDED_ATTENTION_KERNEL,
  BANDED_ATTENTION_KEY_VALUE_GRAD_KERNEL,
  BANDED_ATTENTION_QUERY_GRAD_KERNEL,
} from '../webgpu/banded-attention-wgsl.js';
import type { AttentionHeads } from './banded-attention.js';

/**
 * `fused`: the WGSL attention kernels (webgpu/banded-attention-wgsl.ts), registered for webgpu
 * only; `ops`: the tf-op banded or dense form (`prefersBanded` picks), as on every other backend.
 */
export type AttentionImplementation = 'fused' | 'ops';

/**
 * The longest full (unwindowed) attention that `auto` leaves to the tf-op dense form on webgpu.
 * The fused kernels run a thread per query, so at short lengths most of the GPU idles in them,
 * while the dense form's batched matmuls fill it and its [B, H, L, L] scores are still small
 * (at most 256 floats a token and head, kept three times on the tape). Measured on the H200 (session 27, whole Zoology attention steps, d_model 64, one head,
 * B·L = 32,768, GPU time of the replayed step, pipelined): L 64: dense 3.17 ms against fused
 * 3.77; L 128: 5.51 against 7.28; L 256: 6.25 against 8.79 (docs/gpu.md). Longer full attention
 * and every sliding window keep the fused kernels: their memory is O(L·d), not O(L²), and at the
 * reference hybrid's window (w 128, L 1024) they were as fast as the tf-op banded form.
 */
export const DENSE_ATTENTION_MAX_LENGTH = 256;

/**
 * What `auto` runs for causal attention of `scoreMatrices` (batch × heads) over `length` positions
 * with `window` (null: full): the fused kernels where the current backend has them, except short
 * full attention (above) whose [B·H, L, L] scores fit in half a storage binding (the dense form
 * keeps them in single tensors; larger batches stay on the fused kernels, which split the batch);
 * else the tf-op forms. `INTERLEAVE_ATTENTION=fused|ops` forces one (A/B timing, tests).
 */
export function defaultAttentionImplementation(
  length: number,
  window: number | null,
  scoreMatrices: number,
): AttentionImplementation {
  const forced = process.env.INTERLEAVE_ATTENTION;
  if (forced === 'fused' || forced === 'ops') return forced;
  if (forced !== undefined && forced !== '') {
    throw new InterleaveError(`INTERLEAVE_ATTENTION must be 'fused' or 'ops', got '${forced}'`);
  }
  if (!currentBackendHas(BANDED_ATTENTION_KERNEL)) return 'ops';
  const full = window === null || window >= length;
  const scoreBytes = scoreMatrices * length * length * 4;
  return full && length <= DENSE_ATTENTION_MAX_LENGTH && scoreBytes <= storageBindingLimitBytes() / 2 ? 'ops' : 'fused';
}

/**
 * Causal attention through the fused kernels, same inputs and result as `causalAttention`,
 * differentiable in queries, keys and values. Full attention (`window` null) runs the same
 * kernels with w = L rather than the dense tf-op form: the work is O(L²·d) either way, but the
 * kernels hold O(L·d) memory where the dense form keeps [B, H, L, L] scores, softmax and their
 * gradients on the tape, and forward + backward is 3 kernels where the dense form runs 51 tfjs
 * kernels (26 besides reshapes and identities; counted with tf.profile) — the per-op cost that
 * bounds small models such as Zoology's attention on the GPU (docs/gpu.md).
 */
export function fusedCausalAttention({ queries, keys, values }: AttentionHeads, window: number | null): tf.Tensor3D {
  if (!currentBackendHas(BANDED_ATTENTION_KERNEL)) {
    throw new InterleaveError(
      `the fused attention kernels are registered for webgpu, not for '${tf.getBackend()}' (use INTERLEAVE_ATTENTION=ops)`,
    );
  }
  const [batch, heads, length, headDim] = queries.shape;
  const attrs = { window: Math.min(window ?? length, length) } as unknown as tf.NamedAttrMap;
  // The largest bindings per sequence: queries, the output and dq, H·L·d floats each.
  const perCall = sequencesPerCall(
    batch,
    heads * length * headDim,
    `attention over [${batch}, ${heads}, ${length}, ${headDim}]`,
  );
  const attend = tf.customGrad((q, k, v, save) => {
    const chunks = inBatchChunks([q, k, v] as tf.Tensor[], perCall).map(
      ([qs, ks, vs]) =>
        tf
          .engine()
          .runKernel(BANDED_ATTENTION_KERNEL, { queries: qs, keys: ks, values: vs } as tf.NamedTensorMap, attrs) as [
          tf.Tensor,
          tf.Tensor,
        ],
    );
    const [output, logSumExp] = joinChunks(chunks, 2) as [tf.Tensor, tf.Tensor];
    (save as tf.GradSaveFunc)([q as tf.Tensor, k as tf.Tensor, v as tf.Tensor, output, logSumExp]);
    return {
      value: output,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const grads = inBatchChunks([...saved, dy], perCall).map(([qs, ks, vs, os, lses, dys]) => {
          const [queryGrad, delta] = tf
            .engine()
            .runKernel(
              BANDED_ATTENTION_QUERY_GRAD_KERNEL,
              { queries: qs, keys: ks, values: vs, outputs: os, logSumExp: lses, outputGrad: dys } as tf.NamedTensorMap,
              attrs,
            ) as [tf.Tensor, tf.Tensor];
          const [keyGrad, valueGrad] = tf
            .engine()
            .runKernel(
              BANDED_ATTENTION_KEY_VALUE_GRAD_KERNEL,
              { queries: qs, keys: ks, values: vs, logSumExp: lses, delta, outputGrad: dys } as tf.NamedTensorMap,
              attrs,
            ) as [tf.Tensor, tf.Tensor];
          delta.dispose();
          return [queryGrad, keyGrad, valueGrad];
        });
        return joinChunks(grads, 3);
      },
    };
  });
  return attend(queries, keys, values) as tf.Tensor3D;
}

/** Each of `count` outputs of per-chunk kernel calls, joined along the batch axis. */
function joinChunks(chunks: tf.Tensor[][], count: number): tf.Tensor[] {
  if (chunks.length === 1) return chunks[0] as tf.Tensor[];
  const joined = Array.from({ length: count }, (_, index) =>
    tf.concat(
      chunks.map((outputs) => outputs[index] as tf.Tensor),
      0,
    ),
  );
  tf.dispose(chunks.flat());
  return joined;
}
