import type { TokenBatch } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import type { TrainConfig } from '../config/train-schema.js';
import type { Supervision } from './objective.js';
import { type SupervisedRows, supervisedRows } from './supervised-rows.js';

/**
 * A batch as a step's inputs, on the CPU: token ids [B, L], then either targets and mask [B, L],
 * or the supervised rows with their targets and mask [C] (`train.head_rows`, supervised-rows.ts).
 * `arrays` is the order a recorded step declares its inputs in.
 */
export interface StepData {
  readonly batch: TokenBatch;
  readonly rows: SupervisedRows | undefined;
  readonly arrays: ArrayBufferView[];
  /** Batches with the same key make tensors of the same shapes. */
  readonly shapeKey: string;
  /**
   * A replayed step's derived uploads for these arrays, computed with the batch (a batch worker),
   * and the `derivationsKey` of the derivations they were computed by.
   */
  readonly derived?: { readonly key: string; readonly values: readonly ArrayBufferView[][] };
}

/** The step inputs of `batch` under `train.head_rows`. */
export function stepData(batch: TokenBatch, headRows: TrainConfig['head_rows']): StepData {
  return stepDataOf(batch, headRows === 'supervised' ? supervisedRows(batch) : undefined);
}

/** StepData for a batch whose supervised rows (if the head runs on them alone) are already known. */
export function stepDataOf(
  batch: TokenBatch,
  rows: SupervisedRows | undefined,
  derived?: StepData['derived'],
): StepData {
  const shapeKey = `${batch.batchSize}x${batch.seqLen}`;
  return rows === undefined
    ? { batch, rows, arrays: [batch.inputs, batch.targets, batch.mask], shapeKey, derived }
    : {
        batch,
        rows,
        arrays: [batch.inputs, rows.rows, rows.targets, rows.mask],
        shapeKey: `${shapeKey}, ${rows.rows.length} supervised rows`,
        derived,
      };
}

/** The step's input tensors (`tensors` in the order of `StepData.arrays`). */
export function stepTensors({ batch, rows }: StepData): {
  inputs: tf.Tensor2D;
  supervision: Supervision;
  tensors: tf.Tensor[];
} {
  const shape: [number, number] = [batch.batchSize, batch.seqLen];
  const inputs = tf.tensor2d(batch.inputs, shape, 'int32');
  if (rows === undefined) {
    const targets = tf.tensor2d(batch.targets, shape, 'int32');
    const mask = tf.tensor2d(batch.mask, shape, 'float32');
    return { inputs, supervision: { targets, mask }, tensors: [inputs, targets, mask] };
  }
  const rowIndices = tf.tensor1d(rows.rows, 'int32');
  const targets = tf.tensor1d(rows.targets, 'int32');
  const mask = tf.tensor1d(rows.mask, 'float32');
  return { inputs, supervision: { targets, mask, rows: rowIndices }, tensors: [inputs, rowIndices, targets, mask] };
}
