import * as tf from '@tensorflow/tfjs';
import type { BackendCapabilities } from '../backend/capabilities.js';

/**
 * Row lookup `table[ids]`. tfjs differentiates `gather` with UnsortedSegmentSum, which the wasm
 * backend lacks; there the gradient is computed as oneHot(ids)ᵀ · dy instead.
 */
export function embeddingLookup(table: tf.Tensor2D, ids: tf.Tensor, backend: BackendCapabilities): tf.Tensor {
  if (backend.hasKernel('UnsortedSegmentSum')) return tf.gather(table, ids);
  const [vocab, width] = table.shape;
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
