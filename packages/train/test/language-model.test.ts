import { selectBackend } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { disposeTrainer, tinyHybridTrainer } from './support.js';

describe('language model: step mode reproduces forward, and is causal', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('gives the same logits token by token as in parallel', async () => {
    const trainer = await tinyHybridTrainer(11);
    const model = trainer.model;
    const tokens = tf.tensor2d(
      Array.from({ length: 2 * 20 }, (_, i) => (i * 7 + 3) % 32),
      [2, 20],
      'int32',
    );
    const before = tf.memory().numTensors;
    const parallel = model.forward(tokens);
    let state = model.initState(2);
    const stepped: tf.Tensor2D[] = [];
    for (let t = 0; t < 20; t++) {
      const column = tf.tidy(() => tokens.slice([0, t], [2, 1]).reshape([2])) as tf.Tensor1D;
      const out = model.step(column, state);
      tf.dispose([column, state as unknown as tf.TensorContainer]);
      state = out.state;
      stepped.push(out.logits);
    }
    const diff = tf.tidy(() => tf.stack(stepped, 1).sub(parallel).abs().max().dataSync()[0] as number);
    expect(diff).toBeLessThan(1e-4);
    tf.dispose([parallel, ...stepped, state as unknown as tf.TensorContainer]);
    expect(tf.memory().numTensors).toBe(before);
    tokens.dispose();
    disposeTrainer(trainer);
  });

  it('does not let a later token change earlier logits', async () => {
    const trainer = await tinyHybridTrainer(12);
    const values = Array.from({ length: 16 }, (_, i) => (i * 5 + 1) % 32);
    const changed = [...values];
    changed[10] = (changed[10] as number) + 1;
    const [a, b] = [values, changed].map((v) => tf.tidy(() => trainer.model.forward(tf.tensor2d(v, [1, 16], 'int32'))));
    const past = tf.tidy(() =>
      a!
        .slice([0, 0, 0], [1, 10, 32])
        .sub(b!.slice([0, 0, 0], [1, 10, 32]))
        .abs()
        .max(),
    );
    const future = tf.tidy(() =>
      a!
        .slice([0, 10, 0], [1, 6, 32])
        .sub(b!.slice([0, 10, 0], [1, 6, 32]))
        .abs()
        .max(),
    );
    expect(past.dataSync()[0]).toBe(0);
    expect(future.dataSync()[0]).toBeGreaterThan(1e-4);
    tf.dispose([a!, b!, past, future]);
    disposeTrainer(trainer);
  });
});
