import { selectBackend } from '@interleave/core';
import { lastPredictionsByStep, maskedAccuracyByForward } from '@interleave/eval';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { startWebgpuBackend } from '../../blocks/test/support/webgpu-device.js';
import { disposeTrainer, tinyHybridTrainer } from './support.js';

/**
 * The whole training step on webgpu, where every fused WGSL kernel is in the path (selective
 * scan, RMSNorm, cross-entropy, AdamW), against the same step on the cpu backend's tf ops and
 * JS kernels: the same seed gives the same losses up to float32 rounding.
 */
async function losses(steps: number): Promise<number[]> {
  const trainer = await tinyHybridTrainer(3);
  const values: number[] = [];
  for (let i = 0; i < steps; i++) values.push((await trainer.trainStep()).loss);
  disposeTrainer(trainer);
  return values;
}

describe('a training step on webgpu (Dawn over llvmpipe)', () => {
  it('gives the cpu backend losses over 8 steps, without leaking tensors', async () => {
    await selectBackend('cpu');
    const onCpu = await losses(8);
    await startWebgpuBackend();
    const before = tf.memory().numTensors;
    const onGpu = await losses(8);
    expect(tf.memory().numTensors).toBe(before);
    expect(onGpu.every(Number.isFinite)).toBe(true);
    onGpu.forEach((loss, step) => {
      expect(Math.abs(loss - (onCpu[step] as number)), `step ${step}: ${loss} vs ${onCpu[step]}`).toBeLessThan(1e-3);
    });
  });

  it('scores predictions by the parallel and the step form (reads back asynchronously: no OffscreenCanvas in Node)', async () => {
    await startWebgpuBackend();
    const trainer = await tinyHybridTrainer(3);
    const batch = trainer.task.trainBatch(2, 4);
    const before = tf.memory().numTensors;
    const byForward = await maskedAccuracyByForward(trainer.model, batch);
    const byStep = await lastPredictionsByStep(trainer.model, batch);
    expect(tf.memory().numTensors).toBe(before);
    expect(byForward.counted).toBeGreaterThan(0);
    expect(byStep.predictions).toHaveLength(batch.batchSize);
    disposeTrainer(trainer);
  });
});
