import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { trainLoop } from '../src/run/train-loop.js';
import { disposeTrainer, metricsOnlyTracker, tinyHybridTrainer, tinyTrainConfig } from './support.js';

/**
 * The train loop writes a step's metrics beside the next steps (run/metric-writes.ts): it does
 * not wait for them step by step, settles them before the run's end, and fails on a failed write.
 */

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const identity = { seed: 7, configHash: 'test', backend: 'cpu', metadata: {}, flopsPerToken: 1 };

describe('train loop metric writes', () => {
  it('trains on while earlier steps are still being written, and waits for them before it returns', async () => {
    const steps = 6;
    const trainer = await tinyHybridTrainer(7, { ...tinyTrainConfig, steps });
    let release!: () => void;
    const written = new Promise<void>((resolve) => {
      release = resolve;
    });
    const started: number[] = [];
    let done = 0;
    const tracker = metricsOnlyTracker(async (metrics, step) => {
      if (metrics['train/loss'] === undefined) return;
      started.push(step);
      // No write finishes until every step has started one: a loop that waited would stop at step 1.
      if (started.length === steps) release();
      await written;
      done += 1;
    });
    try {
      const result = await trainLoop(trainer, tracker, { write: () => true }, undefined, identity);
      expect(result.status).toBe('FINISHED');
      expect(started).toEqual([1, 2, 3, 4, 5, 6]);
      expect(done).toBe(steps);
    } finally {
      disposeTrainer(trainer);
    }
  });

  it('a failed write fails the run with its error', async () => {
    const trainer = await tinyHybridTrainer(7, { ...tinyTrainConfig, steps: 8 });
    const tracker = metricsOnlyTracker(async (metrics, step) => {
      if (metrics['train/loss'] !== undefined && step === 3) throw new Error('cannot write MLflow metric: disk full');
    });
    try {
      await expect(trainLoop(trainer, tracker, { write: () => true }, undefined, identity)).rejects.toThrow(
        'disk full',
      );
      expect(trainer.stepsDone).toBeLessThan(8);
    } finally {
      disposeTrainer(trainer);
    }
  });
});
