import type * as tf from '@tensorflow/tfjs';

export interface SelectiveScanShape {
  batch: number;
  length: number;
  dInner: number;
  dState: number;
}

export function selectiveScanShape(x: tf.TensorInfo, a: tf.TensorInfo): SelectiveScanShape {
  const [batch, length, dInner] = x.shape as [number, number, number];
  return { batch, length, dInner, dState: a.shape[1] as number };
}
