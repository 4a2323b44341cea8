import { resolve } from 'node:path';
import { capabilitiesOf, LanguageModel, SeededRandom } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { experimentConfigFromText, loadExperimentConfig } from '../src/config/experiment-config.js';
import { batchThreadsFor, batchWorkerFor, wantsBatchWorker } from '../src/run/assemble-run.js';
import { prepareLoadedRun } from '../src/run/prepare-run.js';
import { BatchWorker, batchRecipeOf } from '../src/trainer/batch-worker.js';
import { stepData } from '../src/trainer/step-data.js';
import { Trainer } from '../src/trainer/trainer.js';
import { tinyTrainConfig } from './support.js';

const MQAR_CONFIG = `
name: batch-worker-test
seed: 11
model: { vocab_size: 64, d_model: 16, layers: [{ block: swa, window: 16, heads: 2 }] }
task: { name: mqar, seq_len: 32, num_kv_pairs: 3, test_examples: 16, random_non_queries: true }
train:
  steps: 12
  batch_size: 8
  optimizer: { name: adamw, lr: 3.0e-3, weight_decay: 0.1, betas: [0.9, 0.98] }
  schedule: { warmup_steps: 2, decay: cosine }
  grad_clip: 1.0
  eval_every: null
  batch_worker: on
`;

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Everything a step feeds the model, as plain arrays: two batches compare equal iff these do. */
function contents(data: { arrays: ArrayBufferView[]; shapeKey: string } | undefined) {
  if (data === undefined) return undefined;
  return { shapeKey: data.shapeKey, arrays: data.arrays.map((array) => Array.from(array as Int32Array)) };
}

describe('batch worker', () => {
  const loaded = experimentConfigFromText(MQAR_CONFIG, 'batch-worker.yaml');
  let worker: BatchWorker;
  beforeAll(() => {
    worker = new BatchWorker(batchRecipeOf(loaded));
  });
  afterAll(async () => {
    await worker.dispose();
  });

  it('draws the batches the main thread draws, by index, in any order', async () => {
    const prepared = await prepareLoadedRun(loaded);
    const task = prepared.task.definition.create(prepared.task.config, { vocabSize: 64, seed: 11 });
    for (const index of [0, 1, 2, 7, 3, 11]) {
      const expected = stepData(task.trainBatch(index, 8), 'supervised');
      expect(contents(await worker.take(index))).toEqual(contents(expected));
    }
    expect(worker.status).toMatch(/^on a worker thread, up to 3 ahead \(\d+ drawn there\)$/);
  });

  it('several threads draw the same batches as one, each index from one thread', async () => {
    const prepared = await prepareLoadedRun(loaded);
    const task = prepared.task.definition.create(prepared.task.config, { vocabSize: 64, seed: 11 });
    const threaded = new BatchWorker(batchRecipeOf(loaded), { threads: 3 });
    try {
      // In order and out of order, past the ones asked ahead, and one asked twice at once.
      const [first, again] = await Promise.all([threaded.take(5), threaded.take(5)]);
      expect(contents(first)).toEqual(contents(stepData(task.trainBatch(5, 8), 'supervised')));
      expect(again).toBeDefined();
      for (const index of [6, 7, 8, 9, 10, 11]) {
        expect(contents(await threaded.take(index)), `batch ${index}`).toEqual(
          contents(stepData(task.trainBatch(index, 8), 'supervised')),
        );
      }
      expect(threaded.status).toMatch(/^on 3 worker threads, up to 6 ahead \(\d+ drawn there\)$/);
    } finally {
      await threaded.dispose();
    }
  });

  it('head_rows: all sends targets and mask for every position', async () => {
    const all = experimentConfigFromText(
      MQAR_CONFIG.replace('batch_worker: on', 'batch_worker: on\n  head_rows: all'),
      'all.yaml',
    );
    const allWorker = new BatchWorker(batchRecipeOf(all));
    try {
      const data = await allWorker.take(4);
      expect(data?.rows).toBeUndefined();
      expect(data?.arrays.map((array) => array.byteLength)).toEqual([8 * 32 * 4, 8 * 32 * 4, 8 * 32 * 4]);
    } finally {
      await allWorker.dispose();
    }
  });

  it('trains to the same losses as batches drawn on the main thread', async () => {
    const run = async (batchWorker: BatchWorker | undefined) => {
      const prepared = await prepareLoadedRun(loaded);
      const { config } = prepared.loaded;
      const model = LanguageModel.build({
        container: prepared.container,
        config: config.model,
        layers: prepared.layers,
        rng: new SeededRandom(config.seed),
        backend: capabilitiesOf(tf.getBackend()),
      });
      const task = prepared.task.definition.create(prepared.task.config, { vocabSize: 64, seed: 11 });
      const trainer = new Trainer(model, task, config.train, { batchWorker });
      const losses: number[] = [];
      for (let step = 0; step < config.train.steps; step++) losses.push((await trainer.trainStep()).loss);
      const status = trainer.batchStatus;
      trainer.dispose();
      model.dispose();
      return { losses, status };
    };
    const onWorker = await run(new BatchWorker(batchRecipeOf(loaded), { threads: 2 }));
    const onMain = await run(undefined);
    expect(onWorker.status).toMatch(/on 2 worker threads/);
    expect(onWorker.losses).toEqual(onMain.losses);
  });

  it('loads the config’s plugins, relative paths from the config’s folder', async () => {
    const withPlugin = await loadExperimentConfig(resolve(import.meta.dirname, '../../../configs/mqar-plugin.yaml'), [
      'train.batch_worker=on',
    ]);
    const pluginWorker = new BatchWorker(batchRecipeOf(withPlugin));
    try {
      const data = await pluginWorker.take(0);
      expect(data).toBeDefined();
      expect(pluginWorker.status).toMatch(/on a worker thread/);
    } finally {
      await pluginWorker.dispose();
    }
  });

  it('a worker that cannot build the task answers undefined and says why; the trainer draws the batch itself', async () => {
    const recipe = {
      ...batchRecipeOf(loaded),
      plugins: ['./no-such-plugin.ts'],
      pluginLocations: [{ file: resolve(import.meta.dirname, 'batch-worker.test.ts') }],
    };
    const broken = new BatchWorker(recipe);
    try {
      expect(await broken.take(0)).toBeUndefined();
      expect(broken.status).toMatch(
        /^on the main thread \(the worker could not build the task: .*cannot load plugin '\.\/no-such-plugin\.ts'/,
      );
      expect(await broken.take(1)).toBeUndefined();
      const prepared = await prepareLoadedRun(loaded);
      const model = LanguageModel.build({
        container: prepared.container,
        config: prepared.loaded.config.model,
        layers: prepared.layers,
        rng: new SeededRandom(11),
        backend: capabilitiesOf(tf.getBackend()),
      });
      const task = prepared.task.definition.create(prepared.task.config, { vocabSize: 64, seed: 11 });
      const trainer = new Trainer(model, task, prepared.loaded.config.train, { batchWorker: broken });
      expect(Number.isFinite((await trainer.trainStep()).loss)).toBe(true);
      expect(trainer.batchStatus).toMatch(/^on the main thread \(/);
      trainer.dispose();
      model.dispose();
    } finally {
      await broken.dispose();
    }
  });

  it("a batch the worker's task refuses is answered undefined, and the worker stays up", async () => {
    // A batch size the worker's task refuses: the worker reports it, the trainer meets the error itself.
    const recipe = { ...batchRecipeOf(loaded), batchSize: -1 };
    const refusing = new BatchWorker(recipe);
    try {
      expect(await refusing.take(0)).toBeUndefined();
      expect(refusing.status).toMatch(/on a worker thread/);
    } finally {
      await refusing.dispose();
    }
  });
});

describe('train.batch_worker', () => {
  it('auto: a worker on webgpu for runs of 500 steps or more, none elsewhere; on and off as named', () => {
    const train = (batch_worker: 'auto' | 'on' | 'off', steps: number) => ({ ...tinyTrainConfig, batch_worker, steps });
    expect(wantsBatchWorker(train('auto', 500), 'webgpu')).toBe(true);
    expect(wantsBatchWorker(train('auto', 499), 'webgpu')).toBe(false);
    expect(wantsBatchWorker(train('auto', 5000), 'cpu')).toBe(false);
    expect(wantsBatchWorker(train('auto', 5000), 'tensorflow')).toBe(false);
    expect(wantsBatchWorker(train('on', 1), 'cpu')).toBe(true);
    expect(wantsBatchWorker(train('off', 5000), 'webgpu')).toBe(false);
    const off = experimentConfigFromText(MQAR_CONFIG.replace('batch_worker: on', 'batch_worker: off'), 'off.yaml');
    expect(batchWorkerFor(off, 'webgpu')).toBeUndefined();
  });

  it('batch_threads: auto is the cores less two, from 1 to 3; a number as given; anything else one config error', () => {
    const train = (batch_threads: 'auto' | number) => ({ ...tinyTrainConfig, batch_threads });
    expect([1, 2, 3, 4, 5, 16].map((cores) => batchThreadsFor(train('auto'), cores))).toEqual([1, 1, 1, 2, 3, 3]);
    expect(batchThreadsFor(train(6), 2)).toBe(6);
    expect(() =>
      experimentConfigFromText(
        MQAR_CONFIG.replace('batch_worker: on', 'batch_worker: on\n  batch_threads: 0'),
        'zero.yaml',
      ),
    ).toThrow(/zero\.yaml:14:\d+.*train\.batch_threads/);
  });

  it('a value other than auto, on or off is one config error naming the key and its line', () => {
    expect(() =>
      experimentConfigFromText(MQAR_CONFIG.replace('batch_worker: on', 'batch_worker: yes'), 'bad.yaml'),
    ).toThrow(/bad\.yaml:13:\d+.*train\.batch_worker/);
  });
});
