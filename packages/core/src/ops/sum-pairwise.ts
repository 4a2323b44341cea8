import * as tf from '@tensorflow/tfjs';

/**
 * Σ of same-shaped tensors by pairwise adds (a tree of depth ⌈log2 n⌉). Not `tf.addN`: on webgpu
 * it binds every input in one shader, and more than 7 inputs exceed the 8 storage buffers a
 * shader stage may bind (nine head chunks of the reference hybrid at B16 L16384 failed so).
 */
export function sumPairwise<T extends tf.Tensor>(tensors: readonly T[]): T {
  if (tensors.length === 0) throw new Error('sumPairwise needs at least one tensor');
  let level: T[] = [...tensors];
  while (level.length > 1) {
    const next: T[] = [];
    for (let index = 0; index < level.length; index += 2) {
      const left = level[index] as T;
      const right = level[index + 1];
      next.push(right === undefined ? left : (tf.add(left, right) as T));
    }
    level = next;
  }
  return level[0] as T;
}
