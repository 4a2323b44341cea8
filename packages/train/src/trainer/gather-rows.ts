import * as tf from '@tensorflow/tfjs';

/**
 * Rows `rows` of x [N, D], as [R, D], with its gradient written as a scatter of the rows'
 * gradients back into zeros [N, D]. tfjs differentiates `tf.gather` through UnsortedSegmentSum,
 * which the wasm backend lacks; ScatterNd exists on every backend Interleave runs on. The rows
 * must be distinct (supervised-rows.ts pads with unsupervised positions), so the scatter never
 * has two updates for one row.
 */
export function gatherRows(x: tf.Tensor2D, rows: tf.Tensor1D): tf.Tensor2D {
  const gather = tf.customGrad((input, save) => {
    (save as tf.GradSaveFunc)([rows]);
    return {
      value: tf.gather(input as tf.Tensor2D, rows),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.scatterND((saved[0] as tf.Tensor1D).reshape([-1, 1]), dy, x.shape),
    };
  });
  return gather(x) as tf.Tensor2D;
}
