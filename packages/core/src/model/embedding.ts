import * as tf from '@tensorflow/tfjs';
import type { BackendCapabilities } from '../backend/capabilities.js';
import { embeddingGradOnGpu, tokenRuns, valuesStillOnCpu } from './embedding-grad-webgpu.js';

/**
 * Row lookup `table[ids]`. tfjs differentiates `gather` with UnsortedSegmentSum; the wasm backend
 * lacks it, so there the gradient is computed as oneHot(ids)ᵀ · dy instead, and on webgpu, where
 * tfjs's atomics serialise on repeated tokens, by a sort of the ids on the CPU and two summing
 * dispatches (embedding-grad-webgpu.ts).
 */
export function embeddingLookup(table: tf.Tensor2D, ids: tf.Tensor, backend: BackendCapabilities): tf.Tensor {
  const [vocab, width] = table.shape;
  const idValues = valuesStillOnCpu(ids);
  if (idValues !== undefined && allWithin(idValues, vocab)) {
    const runs = tokenRuns(idValues, vocab);
    const lookup = tf.customGrad((tableArg) => ({
      value: tf.gather(tableArg as tf.Tensor2D, ids),
      gradFunc: (dy: tf.Tensor) => embeddingGradOnGpu(dy, ids, runs, vocab),
    }));
    return lookup(table);
  }
  if (backend.hasKernel('UnsortedSegmentSum')) return tf.gather(table, ids);
  const lookup = tf.customGrad((tableArg) => {
    const rows = tf.gather(tableArg as tf.Tensor2D, ids);

    return {
      value: rows,
      gradFunc: (dy: tf.Tensor) => {
        const flatIds = ids.reshape([-1]) as tf.Tensor1D;
        const oneHot = tf.oneHot(flatIds, vocab).toFloat();
        // [V, N]·[N, D]; transposed explicitly because wasm's transposed matMul is ~25× slower.
        return tf.matMul(oneHot.transpose(), dy.reshape([-1, width]) as tf.Tensor2D);
      },
    };
  });
  return lookup(table);
}

/** Out-of-range ids keep tfjs's own gather, so they behave as they do on every other path. */
function allWithin(ids: ArrayLike<number>, vocab: number): boolean {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i] as number;
    if (id < 0 || id >= vocab) return false;
  }
  return true;
}
