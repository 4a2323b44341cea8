import { selectBackend } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { disposeTrainer, tinyHybridTrainer } from './support.js';

describe.each(['wasm', 'cpu'])('trainer on %s', (backend) => {
  beforeAll(async () => {
    expect((await selectBackend(backend as 'wasm' | 'cpu')).name).toBe(backend);
  });

  it('leaves tf.memory().numTensors unchanged across training steps and evaluation', async () => {
    const trainer = await tinyHybridTrainer(1);
    await trainer.trainStep();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) await trainer.trainStep();
    await trainer.evaluate();
    expect(tf.memory().numTensors).toBe(before);
    disposeTrainer(trainer);
  });

  it('gives the same first 20 losses for the same seed, and different ones for another seed', async () => {
    const run = async (seed: number) => {
      const trainer = await tinyHybridTrainer(seed);
      const losses: number[] = [];
      for (let i = 0; i < 20; i++) losses.push((await trainer.trainStep()).loss);
      disposeTrainer(trainer);
      return losses;
    };
    const first = await run(3);
    const again = await run(3);
    const other = await run(4);
    expect(again).toEqual(first);
    expect(other).not.toEqual(first);
    expect(first.every(Number.isFinite)).toBe(true);
  });
});

describe('trainer updates', () => {
  beforeAll(async () => {
    await selectBackend('wasm');
  });

  it('reduces the loss on a fixed task within 40 steps', async () => {
    const trainer = await tinyHybridTrainer(5);
    const losses: number[] = [];
    for (let i = 0; i < 40; i++) losses.push((await trainer.trainStep()).loss);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(losses.slice(-10))).toBeLessThan(mean(losses.slice(0, 5)) - 0.2);
    disposeTrainer(trainer);
  });

  it('draws each batch once, in order, the next one while the step is read back', async () => {
    const trainer = await tinyHybridTrainer(7);
    const drawn: number[] = [];
    const task = trainer.task as { trainBatch: (index: number, size: number) => unknown };
    const draw = task.trainBatch.bind(task);
    task.trainBatch = (index, size) => {
      drawn.push(index);
      return draw(index, size);
    };
    for (let i = 0; i < 3; i++) await trainer.trainStep();
    expect(drawn).toEqual([0, 1, 2, 3]);
    trainer.restoreProgress(10);
    await trainer.trainStep();
    expect(drawn).toEqual([0, 1, 2, 3, 10, 11]);
    disposeTrainer(trainer);
  });

  it('does not decay norms, A_log or D, and decays matrices', async () => {
    const trainer = await tinyHybridTrainer(6);
    const decayed = trainer.model.parameters
      .list()
      .filter((p) => p.decay)
      .map((p) => p.name);
    const notDecayed = trainer.model.parameters
      .list()
      .filter((p) => !p.decay)
      .map((p) => p.name);
    expect(notDecayed).toEqual(
      expect.arrayContaining(['layers.0.norm.weight', 'layers.0.mixer.A_log', 'layers.0.mixer.D', 'norm_f.weight']),
    );
    expect(notDecayed.some((name) => name.endsWith('conv1d.bias') || name.endsWith('dt_proj.bias'))).toBe(true);
    expect(decayed).toEqual(expect.arrayContaining(['layers.0.mixer.in_proj.weight', 'layers.1.mixer.q_proj.weight']));
    disposeTrainer(trainer);
  });
});
