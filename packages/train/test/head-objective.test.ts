import { headChunkRows, selectBackend } from '@interleave/core';
import { maskedAccuracyByForward } from '@interleave/eval';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { headObjective } from '../src/trainer/head-objective.js';
import { supervisedRows } from '../src/trainer/supervised-rows.js';
import type { Trainer } from '../src/trainer/trainer.js';
import { disposeTrainer, tinyHybridTrainer, tinyTrainConfig } from './support.js';

/** The tiny hybrid's vocabulary (support.ts): a budget of `rows` rows of its float32 logits. */
const VOCAB = 32;
const rowsBudget = (rows: number) => rows * VOCAB * 4;

/**
 * Loss, accuracy counts and every parameter's gradient on the trainer's first batch; with
 * `gathered`, the head runs on the supervised rows alone (supervised-rows.ts).
 */
function objectiveAndGradients(trainer: Trainer, budgetBytes?: number, gathered = false) {
  const batch = trainer.task.trainBatch(0, trainer.train.batch_size);
  const parameters = trainer.model.parameters.list();
  const supervised = gathered ? supervisedRows(batch) : undefined;
  if (gathered && supervised === undefined) throw new Error('the batch supervises over half its positions');
  return tf.tidy(() => {
    const shape: [number, number] = [batch.batchSize, batch.seqLen];
    const inputs = tf.tensor2d(batch.inputs, shape, 'int32');
    const supervision =
      supervised === undefined
        ? { targets: tf.tensor2d(batch.targets, shape, 'int32'), mask: tf.tensor2d(batch.mask, shape, 'float32') }
        : {
            targets: tf.tensor1d(supervised.targets, 'int32'),
            mask: tf.tensor1d(supervised.mask, 'float32'),
            rows: tf.tensor1d(supervised.rows, 'int32'),
          };
    let correct = 0;
    let counted = 0;
    const { value, grads } = tf.variableGrads(
      () => {
        const objective = headObjective(trainer.model, inputs, supervision, budgetBytes);
        correct = objective.correct.dataSync()[0] as number;
        counted = objective.counted.dataSync()[0] as number;
        return objective.loss;
      },
      parameters.map((parameter) => parameter.variable),
    );
    const gradients = Object.fromEntries(
      parameters.map(({ name, variable }) => [name, Array.from((grads[variable.name] as tf.Tensor).dataSync())]),
    );
    return { loss: value.dataSync()[0] as number, correct, counted, gradients };
  });
}

function maxAbsDifference(actual: number[], expected: number[]): number {
  return actual.reduce((worst, value, index) => Math.max(worst, Math.abs(value - (expected[index] as number))), 0);
}

describe('head row chunks', () => {
  it('are one chunk when the logits fit, else the fewest near-equal chunks under the budget', () => {
    expect(headChunkRows(64, VOCAB, Number.POSITIVE_INFINITY)).toEqual([64]);
    expect(headChunkRows(64, VOCAB, rowsBudget(64))).toEqual([64]);
    expect(headChunkRows(64, VOCAB, rowsBudget(63))).toEqual([32, 32]);
    expect(headChunkRows(64, VOCAB, rowsBudget(5))).toEqual([...Array(12).fill(5), 4]);
    expect(headChunkRows(10, VOCAB, rowsBudget(4))).toEqual([4, 3, 3]);
    // The reference hybrid at B16 L4096 under an H200's binding limit with the margin: two halves.
    expect(headChunkRows(65_536, 8192, Math.floor(2_147_483_644 * (15 / 16)))).toEqual([32_768, 32_768]);
    expect(() => headChunkRows(4, VOCAB, VOCAB * 4 - 1)).toThrow(/exceeds the head's chunk budget/);
  });
});

describe('the head and loss in row chunks (cpu)', () => {
  beforeAll(async () => {
    await selectBackend('cpu');
  });

  it('gives the unchunked loss, accuracy counts and gradients, without leaking tensors', async () => {
    const trainer = await tinyHybridTrainer(7);
    const whole = objectiveAndGradients(trainer);
    const before = tf.memory().numTensors;
    // 64 rows (4 × 16) in 13 chunks (12 × 5 + 4), some of them without a supervised position.
    const chunked = objectiveAndGradients(trainer, rowsBudget(5));
    expect(tf.memory().numTensors).toBe(before);
    expect(whole.counted).toBeGreaterThan(0);
    expect(whole.counted).toBeLessThan(64);
    expect(chunked.counted).toBe(whole.counted);
    expect(chunked.correct).toBe(whole.correct);
    expect(Math.abs(chunked.loss - whole.loss)).toBeLessThan(1e-6 * whole.loss);
    for (const [name, expected] of Object.entries(whole.gradients)) {
      const scale = Math.max(...expected.map(Math.abs));
      expect(scale, name).toBeGreaterThan(0);
      expect(maxAbsDifference(chunked.gradients[name] as number[], expected), name).toBeLessThan(1e-5 * scale);
    }
    disposeTrainer(trainer);
  });

  it('trains and evaluates as the unchunked trainer does', async () => {
    const run = async (headChunkBytes?: number) => {
      const trainer = await tinyHybridTrainer(8, undefined, headChunkBytes);
      const steps = [];
      for (let i = 0; i < 4; i++) steps.push(await trainer.trainStep());
      const evaluation = await trainer.evaluate();
      const batch = trainer.task.trainBatch(9, 4);
      const accuracy = await maskedAccuracyByForward(trainer.model, batch, headChunkBytes);
      disposeTrainer(trainer);
      return { steps, evaluation, accuracy };
    };
    const whole = await run();
    const chunked = await run(rowsBudget(3));
    chunked.steps.forEach((step, index) => {
      const expected = whole.steps[index];
      expect(step.loss).toBeCloseTo(expected?.loss as number, 5);
      expect(step.gradNorm).toBeCloseTo(expected?.gradNorm as number, 5);
      expect(step.accuracy).toBe(expected?.accuracy);
    });
    expect(chunked.evaluation.loss).toBeCloseTo(whole.evaluation.loss, 5);
    expect(chunked.evaluation.accuracy).toBe(whole.evaluation.accuracy);
    expect(chunked.accuracy).toEqual(whole.accuracy);
    expect(whole.accuracy.counted).toBeGreaterThan(0);
  });
});

describe('the head on the supervised rows alone (cpu)', () => {
  beforeAll(async () => {
    await selectBackend('cpu');
  });

  it('gives the loss, accuracy counts and gradients of the head on every row', async () => {
    const trainer = await tinyHybridTrainer(7);
    const whole = objectiveAndGradients(trainer);
    const before = tf.memory().numTensors;
    const gathered = objectiveAndGradients(trainer, undefined, true);
    // Chunked too: 8 supervised rows in chunks of 3.
    const gatheredInChunks = objectiveAndGradients(trainer, rowsBudget(3), true);
    expect(tf.memory().numTensors).toBe(before);
    for (const result of [gathered, gatheredInChunks]) {
      expect(result.counted).toBe(whole.counted);
      expect(result.correct).toBe(whole.correct);
      expect(Math.abs(result.loss - whole.loss)).toBeLessThan(1e-6 * whole.loss);
      for (const [name, expected] of Object.entries(whole.gradients)) {
        const scale = Math.max(...expected.map(Math.abs));
        expect(maxAbsDifference(result.gradients[name] as number[], expected), name).toBeLessThan(1e-5 * scale);
      }
    }
    disposeTrainer(trainer);
  });

  it('trains and evaluates as train.head_rows: all does', async () => {
    const run = async (headRows: 'supervised' | 'all') => {
      const trainer = await tinyHybridTrainer(8, { ...tinyTrainConfig, head_rows: headRows });
      const steps = [];
      for (let i = 0; i < 5; i++) steps.push(await trainer.trainStep());
      const evaluation = await trainer.evaluate();
      disposeTrainer(trainer);
      return { steps, evaluation };
    };
    const all = await run('all');
    const supervised = await run('supervised');
    supervised.steps.forEach((step, index) => {
      const expected = all.steps[index];
      expect(step.loss).toBeCloseTo(expected?.loss as number, 5);
      expect(step.gradNorm).toBeCloseTo(expected?.gradNorm as number, 5);
      expect(step.accuracy).toBe(expected?.accuracy);
    });
    expect(all.steps[4]?.loss).not.toBeCloseTo(all.steps[0]?.loss as number, 3);
    expect(supervised.evaluation.loss).toBeCloseTo(all.evaluation.loss, 5);
    expect(supervised.evaluation.counted).toBe(all.evaluation.counted);
    expect(supervised.evaluation.accuracy).toBe(all.evaluation.accuracy);
  });
});
