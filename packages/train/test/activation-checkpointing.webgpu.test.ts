import { useWebgpuBackend } from '@interleave/blocks/testing';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { checkpointingTrainer, mixedLayers, readLossAndGradients } from './checkpointing-support.js';
import { disposeTrainer } from './support.js';

/**
 * On webgpu the recomputed layers run the fused WGSL kernels (selective scan, RG-LRU scan,
 * RMSNorm) with their own custom gradients nested inside the recompute's tape.
 */
describe('activation checkpointing on webgpu', () => {
  useWebgpuBackend();

  it('gives the plain step loss and gradients, without leaking tensors', async () => {
    const trainer = await checkpointingTrainer({ seed: 5, layers: mixedLayers(), checkpointing: 'none' });
    try {
      const plain = await readLossAndGradients(trainer, 'none');
      const before = tf.memory().numTensors;
      const recomputed = await readLossAndGradients(trainer, 'layers');
      expect(tf.memory().numTensors).toBe(before);
      expect(recomputed.loss).toBe(plain.loss);
      for (const [name, expected] of Object.entries(plain.gradients)) {
        expect(Math.max(...expected.map(Math.abs)), name).toBeGreaterThan(0);
        expect(recomputed.gradients[name], name).toEqual(expected);
      }
    } finally {
      disposeTrainer(trainer);
    }
  });
});
