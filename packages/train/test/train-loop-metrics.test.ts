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

describe('train.metrics_every', () => {
  async function writtenSteps(train: Partial<typeof tinyTrainConfig>, stopAfter?: number) {
    const trainer = await tinyHybridTrainer(7, { ...tinyTrainConfig, ...train });
    const steps: number[] = [];
    const evaluations: number[] = [];
    const stop = { stopped: false };
    const tracker = metricsOnlyTracker(async (metrics, step) => {
      if (metrics['train/loss'] !== undefined) {
        // Every training metric goes out together, with its step's compute so far.
        expect(Object.keys(metrics).sort()).toEqual([
          'compute/flops',
          'compute/tokens',
          'train/accuracy',
          'train/grad_norm',
          'train/loss',
          'train/lr',
          'train/tokens_per_second',
        ]);
        steps.push(step);
      }
      if (metrics['eval/loss'] !== undefined) evaluations.push(step);
    });
    const progress = {
      write: (text: string) => {
        if (stopAfter !== undefined && trainer.stepsDone >= stopAfter) stop.stopped = true;
        return text.length >= 0;
      },
    };
    try {
      const result = await trainLoop(trainer, tracker, progress, stop, identity);
      return { steps, evaluations, result };
    } finally {
      disposeTrainer(trainer);
    }
  }

  it('writes every step by default', async () => {
    const { steps } = await writtenSteps({ steps: 5, eval_every: null });
    expect(steps).toEqual([1, 2, 3, 4, 5]);
  });

  it('writes every n-th step, every evaluation step and the last, and keeps the losses of every step', async () => {
    const { steps, evaluations, result } = await writtenSteps({ steps: 11, metrics_every: 4, eval_every: 3 });
    expect(steps).toEqual([3, 4, 6, 8, 9, 11]);
    expect(evaluations).toEqual([3, 6, 9, 11]);
    expect(result.losses).toHaveLength(11);
  });

  it('writes the step a stopped run ended on, so its step count and compute are in MLflow', async () => {
    const { steps, result } = await writtenSteps({ steps: 12, metrics_every: 5, eval_every: null, log_every: 1 }, 7);
    expect(result.status).toBe('KILLED');
    expect(steps.slice(0, -1)).toEqual([5]);
    expect(steps.at(-1)).toBe(result.steps);
    expect(result.steps).toBeGreaterThan(5);
    expect(result.steps).toBeLessThan(12);
  });
});
