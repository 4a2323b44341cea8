import { mambaBlock } from '@interleave/blocks';
import { type ActivationCheckpointing, type ResolvedLayer, selectBackend } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkpointingTrainer, layerOf, mixedLayers, readLossAndGradients } from './checkpointing-support.js';
import { disposeTrainer } from './support.js';

/**
 * Bytes held above the starting point at the fullest moment of a training step (the second: the
 * first creates AdamW's moments) of a fresh trainer training with `checkpointing`.
 */
async function peakBytesOfStep(layers: ResolvedLayer[], checkpointing: ActivationCheckpointing): Promise<number> {
  const trainer = await checkpointingTrainer({ seed: 3, layers, checkpointing, seqLen: 256, batchSize: 2 });
  try {
    await trainer.trainStep();
    const before = tf.memory().numBytes;
    const profile = await tf.profile(async () => {
      await trainer.trainStep();
    });
    return profile.peakBytes - before;
  } finally {
    disposeTrainer(trainer);
  }
}

describe('activation checkpointing of the residual layers (cpu)', () => {
  beforeAll(async () => {
    await selectBackend('cpu');
  });

  it('gives the same loss and every parameter the same gradient as the plain step', async () => {
    const trainer = await checkpointingTrainer({ seed: 5, layers: mixedLayers(), checkpointing: 'none' });
    try {
      const plain = await readLossAndGradients(trainer, 'none');
      const before = tf.memory().numTensors;
      const recomputed = await readLossAndGradients(trainer, 'layers');
      expect(tf.memory().numTensors).toBe(before);
      expect(recomputed.loss).toBe(plain.loss);
      expect(Object.keys(recomputed.gradients)).toEqual(Object.keys(plain.gradients));
      for (const [name, expected] of Object.entries(plain.gradients)) {
        // Every parameter is reached (a gradient lost by the recompute would be all zeros here).
        expect(Math.max(...expected.map(Math.abs)), name).toBeGreaterThan(0);
        expect(recomputed.gradients[name], name).toEqual(expected);
      }
    } finally {
      disposeTrainer(trainer);
    }
  });

  it('trains several steps to the same losses, without leaking a tensor', async () => {
    const losses = async (checkpointing: ActivationCheckpointing) => {
      const trainer = await checkpointingTrainer({ seed: 9, layers: mixedLayers(), checkpointing });
      try {
        const values: number[] = [];
        for (let step = 0; step < 3; step++) {
          const before = tf.memory().numTensors;
          values.push((await trainer.trainStep()).loss);
          expect(tf.memory().numTensors).toBe(before);
        }
        // Evaluation takes no gradients and so never recomputes: the same either way.
        values.push((await trainer.evaluate()).loss);
        return values;
      } finally {
        disposeTrainer(trainer);
      }
    };
    const plain = await losses('none');
    expect(await losses('layers')).toEqual(plain);
    expect(new Set(plain).size).toBe(plain.length);
  });

  it("lowers the peak memory of a deep model's training step on long sequences", async () => {
    // Eight Mamba layers at L 256: each layer's tape (projections, conv, scan) is many times its
    // input, so keeping only the inputs must hold much less at the start of the backward pass.
    const layers = Array.from({ length: 8 }, () => layerOf(mambaBlock, { d_state: 4 }));
    const plain = await peakBytesOfStep(layers, 'none');
    const recomputed = await peakBytesOfStep(layers, 'layers');
    expect(recomputed).toBeGreaterThan(0);
    expect(recomputed).toBeLessThan(plain / 2);
  });
});
