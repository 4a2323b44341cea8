import { runBlockContract } from '@interleave/blocks/testing';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { basedBlock, taylorFeatures } from '../src/index.js';

describe('taylorFeatures', () => {
  it('makes φ(q)·φ(k) = 1 + S + S²/2 with S = q·k/√F, the weights of the parallel form', async () => {
    const features = 5;
    const q = tf.tensor1d([0.3, -1.2, 0.8, 0.05, -0.4]);
    const k = tf.tensor1d([-0.7, 0.9, 0.2, 1.1, -0.3]);
    const dot = (await tf.dot(taylorFeatures(q), taylorFeatures(k)).data())[0] as number;
    const score = ((await tf.dot(q, k).data())[0] as number) / Math.sqrt(features);
    expect(dot).toBeCloseTo(1 + score + (score * score) / 2, 5);
    expect(taylorFeatures(q).shape).toEqual([1 + features + features * features]);
    tf.dispose([q, k]);
  });
});

// The block contract: shapes, causality, step (recurrent state) = forward (parallel form),
// gradients against finite differences, no leaked tensors, same seed → same parameters.
runBlockContract(basedBlock, { feature_dim: 4, heads: 2 }, { backends: ['cpu', 'wasm'] });
runBlockContract(basedBlock, { feature_dim: 3, heads: 1, conv_size: 2 }, { backends: ['wasm'] });
