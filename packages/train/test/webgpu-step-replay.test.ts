import { noteDerivedUpload, type RecordedStep, recordWebgpuStep, registerUploadDerivation } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { startWebgpuBackend } from '../../blocks/test/support/webgpu-device.js';
import type { TrainConfig } from '../src/config/train-schema.js';
import { trainLoop } from '../src/run/train-loop.js';
import type { Trainer } from '../src/trainer/trainer.js';
import { disposeTrainer, metricsOnlyTracker, tinyHybridTrainer, tinyTrainConfig } from './support.js';

/**
 * A training step recorded at the Dawn level and replayed without tfjs (core's
 * webgpu-step-replay.ts, the trainer's `train.step_replay`): the same kernels in the same order
 * on the same data, so the losses, gradient norms and parameters are bit-identical to stepping
 * through tfjs, and a recording that changes anywhere but its declared inputs is refused.
 */

beforeAll(async () => {
  await startWebgpuBackend();
});

interface Trace {
  losses: number[];
  norms: number[];
  parameters: Float32Array[];
  status: string;
}

async function trace(trainer: Trainer, steps: number): Promise<Trace> {
  const losses: number[] = [];
  const norms: number[] = [];
  for (let i = 0; i < steps; i++) {
    const metrics = await trainer.trainStep();
    losses.push(metrics.loss);
    norms.push(metrics.gradNorm);
  }
  const parameters = await Promise.all(
    trainer.model.parameters.list().map(async ({ variable }) => (await variable.data()) as Float32Array),
  );
  return { losses, norms, parameters, status: trainer.stepReplayStatus };
}

/** The evaluation of a fresh trainer's model holding `parameters`. */
async function evaluateWith(parameters: Float32Array[], train: TrainConfig) {
  const trainer = await tinyHybridTrainer(7, train);
  try {
    for (const [i, { variable }] of trainer.model.parameters.list().entries()) {
      variable.assign(tf.tensor(parameters[i] as Float32Array, variable.shape));
    }
    return await trainer.evaluate();
  } finally {
    disposeTrainer(trainer);
  }
}

async function run(train: TrainConfig, steps: number): Promise<Trace> {
  const trainer = await tinyHybridTrainer(7, train);
  try {
    return await trace(trainer, steps);
  } finally {
    disposeTrainer(trainer);
  }
}

describe('training steps replayed on webgpu (Dawn over llvmpipe)', () => {
  it('give bit-identical losses, norms and parameters to tfjs steps, through warm-up, decay and clipping', async () => {
    const train: TrainConfig = {
      ...tinyTrainConfig,
      schedule: { warmup_steps: 4, decay: 'cosine', min_lr_ratio: 0.1 },
    };
    const viaTfjs = await run({ ...train, step_replay: 'off' }, 12);
    const before = tf.memory().numTensors;
    const replayed = await run(train, 12);
    expect(tf.memory().numTensors).toBe(before);
    expect(viaTfjs.status).toBe('off: train.step_replay is off');
    expect(replayed.status).toMatch(/^replaying \(\d+ dispatches in \d+ submits\)$/);
    expect(replayed.losses).toEqual(viaTfjs.losses);
    expect(replayed.norms).toEqual(viaTfjs.norms);
    replayed.parameters.forEach((values, i) => {
      expect(Array.from(values), `parameter ${i}`).toEqual(Array.from(viaTfjs.parameters[i] as Float32Array));
    });
    // The losses moved: the replays trained, they did not repeat one step.
    expect(new Set(replayed.losses.slice(3)).size).toBe(9);
  });

  it('replays activation-checkpointed steps without clipping the same way', async () => {
    const train: TrainConfig = { ...tinyTrainConfig, grad_clip: null, activation_checkpointing: 'layers' };
    const viaTfjs = await run({ ...train, step_replay: 'off' }, 7);
    const replayed = await run(train, 7);
    expect(replayed.status).toMatch(/^replaying/);
    expect(replayed.losses).toEqual(viaTfjs.losses);
  });

  it('records again after a restore reassigns the parameters, and evaluates from the replayed weights', async () => {
    const trainer = await tinyHybridTrainer(7, tinyTrainConfig);
    const twin = await tinyHybridTrainer(7, { ...tinyTrainConfig, step_replay: 'off' });
    try {
      await trace(trainer, 5);
      await trace(twin, 5);
      expect(trainer.stepReplayStatus).toMatch(/^replaying/);
      expect(await trainer.evaluate(4)).toEqual(await twin.evaluate(4));
      // A checkpoint restore assigns every variable: the plan no longer writes where they point.
      for (const t of [trainer, twin]) {
        for (const { variable } of t.model.parameters.list()) variable.assign(tf.tidy(() => variable.mul(0.5)));
        t.restoreProgress(5);
      }
      expect(trainer.stepReplayStatus).toBe('not yet recorded');
      const after = await trace(trainer, 5);
      const afterTwin = await trace(twin, 5);
      expect(after.status).toMatch(/^replaying/);
      expect(after.losses).toEqual(afterTwin.losses);
    } finally {
      disposeTrainer(trainer);
      disposeTrainer(twin);
    }
  });

  it('reads the current weights and moments at every checkpoint, not the first checkpoint’s again', async () => {
    // tfjs keeps a tensor's values on the CPU once they have been read, and a replay writes the
    // GPU buffers behind its back: without care, every checkpoint after the first held the
    // first one's weights (an H200 RG-LRU run saved its step-2,500 weights at step 10,000).
    const viaTfjs = await tinyHybridTrainer(7, { ...tinyTrainConfig, step_replay: 'off' });
    const replayed = await tinyHybridTrainer(7, tinyTrainConfig);
    const readAll = (trainer: Trainer) =>
      Promise.all(
        [
          ...trainer.model.parameters.list().map(({ variable }) => variable),
          ...Object.values(trainer.optimizer.stateTensors()),
        ].map(async (tensor) => Array.from((await tensor.data()) as Float32Array)),
      );
    try {
      await trace(replayed, 6);
      expect(replayed.stepReplayStatus).toMatch(/^replaying/);
      const first = await readAll(replayed); // the first checkpoint's read
      await trace(replayed, 6);
      await trace(viaTfjs, 12);
      const second = await readAll(replayed);
      const expected = await readAll(viaTfjs);
      expect(second.length).toBe(expected.length);
      for (const [i, values] of second.entries()) expect(values, `tensor ${i}`).toEqual(expected[i]);
      expect(second).not.toEqual(first);
    } finally {
      disposeTrainer(replayed);
      disposeTrainer(viaTfjs);
    }
  });
});

describe('replayed steps overlapped with the read-back of the last one (overlapNext)', () => {
  it('train as stepping one at a time does, and settle before the weights are read', async () => {
    const steps = 12;
    const oneByOne = await run(tinyTrainConfig, steps);
    const before = tf.memory().numTensors;
    const trainer = await tinyHybridTrainer(7, tinyTrainConfig);
    try {
      const losses: number[] = [];
      for (let i = 0; i < steps - 1; i++) losses.push((await trainer.trainStep({ overlapNext: true })).loss);
      // Step 12 is on the GPU already (submitted with step 11's read-back), not yet counted.
      expect(trainer.stepsDone).toBe(steps - 1);
      await expect(trainer.evaluate(4)).rejects.toThrow(/training step 12 submitted ahead: settle\(\) first/);
      const settled = await trainer.settle();
      expect(settled?.step).toBe(steps);
      losses.push(settled?.loss as number);
      expect(await trainer.settle()).toBeUndefined();
      expect(trainer.stepReplayStatus).toMatch(/^replaying/);
      expect(losses).toEqual(oneByOne.losses);
      const parameters = trainer.model.parameters.list();
      for (const [i, { variable }] of parameters.entries()) {
        expect(Array.from(await variable.data()), `parameter ${i}`).toEqual(
          Array.from(oneByOne.parameters[i] as Float32Array),
        );
      }
    } finally {
      disposeTrainer(trainer);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('the train loop, stopped with a step submitted ahead, counts that step before its final evaluation', async () => {
    const train: TrainConfig = { ...tinyTrainConfig, steps: 20 };
    const oneByOne = await run(train, 9);
    const trainer = await tinyHybridTrainer(7, train);
    const stopSignal = { stopped: false };
    const logged: number[] = [];
    const tracker = metricsOnlyTracker(async (metrics, step) => {
      if (metrics['train/loss'] === undefined) return;
      logged.push(step);
      // Stopped while step 8 is logged: step 9 is on the GPU by then (submitted with 8's read-back).
      if (step === 8) stopSignal.stopped = true;
    });
    try {
      const identity = { seed: 7, configHash: 'test', backend: 'webgpu', metadata: {}, flopsPerToken: 1 };
      const result = await trainLoop(trainer, tracker, { write: () => true }, stopSignal, identity);
      expect(result.status).toBe('KILLED');
      expect(result.steps).toBe(9);
      expect(logged).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      expect(result.losses).toEqual(oneByOne.losses);
      // The final evaluation read the weights after step 9: those of nine steps one at a time.
      expect(result.finalEval).toEqual(await evaluateWith(oneByOne.parameters, train));
    } finally {
      disposeTrainer(trainer);
    }
  });

  it('submits nothing past the last configured step', async () => {
    const trainer = await tinyHybridTrainer(7, { ...tinyTrainConfig, steps: 6 });
    try {
      for (let i = 0; i < 6; i++) await trainer.trainStep({ overlapNext: true });
      expect(trainer.stepsDone).toBe(6);
      expect(await trainer.settle()).toBeUndefined();
    } finally {
      disposeTrainer(trainer);
    }
  });
});

describe('a recorded step, dispatch by dispatch', () => {
  it('times every dispatch under its pipeline label, and the training after it matches tfjs', async () => {
    const trainer = await tinyHybridTrainer(7, tinyTrainConfig);
    const twin = await tinyHybridTrainer(7, { ...tinyTrainConfig, step_replay: 'off' });
    try {
      await trace(trainer, 5);
      await trace(twin, 5);
      const plan = trainer.recordedStep as RecordedStep;
      const times = await plan.timeDispatches(2);
      expect(times).toHaveLength(plan.dispatchCount);
      expect(times.map((time) => time.index)).toEqual(times.map((_, index) => index));
      expect(times.every((time) => Number.isFinite(time.ms) && time.ms >= 0)).toBe(true);
      const labels = new Set(times.map((time) => time.label));
      // tfjs's programs and Interleave's kernels, e.g. the head's scatter and the fused AdamW.
      for (const label of ['ScatterProgram', 'InterleaveSoftmaxCrossEntropy', 'InterleaveAdamWUpdate'])
        expect(labels.has(label), label).toBe(true);
      // The timing dirtied intermediate buffers only: the next replayed steps still train as tfjs does.
      expect((await trace(trainer, 3)).losses).toEqual((await trace(twin, 3)).losses);
    } finally {
      disposeTrainer(trainer);
      disposeTrainer(twin);
    }
  });
});

describe('recordWebgpuStep', () => {
  registerUploadDerivation('test-doubled', (values) => [Float32Array.from(values, (v) => 2 * v)]);

  /** w ← w ⊙ x + 2x + c; returns Σw. `c` is a constant of the step, 2x an upload derived from x on the CPU. */
  function stepOf(w: tf.Variable, x: tf.Tensor1D, c: number, declareDerived: boolean) {
    return () => {
      const output = tf.tidy(() => {
        const doubled = tf.tensor1d(Array.from(x.dataSync(), (v) => 2 * v));
        const next = w.mul(x).add(doubled).add(tf.scalar(c));
        if (declareDerived) noteDerivedUpload(x, [doubled], { name: 'test-doubled', params: {} });
        w.assign(next);
        return next.sum().reshape([1]);
      });
      return { value: undefined, output };
    };
  }

  function record(w: tf.Variable, values: number[], c: number, declareDerived = true) {
    const x = tf.tensor1d(values);
    const { plan, refusal } = recordWebgpuStep({ inputs: [x], state: [w] }, stepOf(w, x, c, declareDerived));
    return { plan, refusal, x };
  }

  it('replays with new inputs and derived uploads, and updates the state in place of the recording', async () => {
    const w = tf.variable(tf.tensor1d([1, 2, 3, 4]));
    const first = record(w, [1, 1, 1, 1], 0.5);
    const second = record(w, [2, 0, 1, 3], 0.5);
    const [earlier, later] = [first.plan, second.plan] as [RecordedStep, RecordedStep];
    expect(first.refusal).toBeUndefined();
    expect(later.differenceFrom(earlier)).toBeUndefined();
    earlier.dispose();
    // w is now ((w·1 + 2 + .5)·[2,0,1,3] + 2·[2,0,1,3] + .5)
    const expected = [1, 2, 3, 4].map((v, i) => {
      const x2 = [2, 0, 1, 3][i] as number;
      const x3 = [0.5, 1, -1, 2][i] as number;
      const afterSecond = (v + 2.5) * x2 + 2 * x2 + 0.5;
      return afterSecond * x3 + 2 * x3 + 0.5;
    });
    const sum = await later.replay([Float32Array.from([0.5, 1, -1, 2])]);
    expect(Array.from(await w.data())).toEqual(expected);
    expect(sum[0]).toBeCloseTo(
      expected.reduce((a, b) => a + b),
      5,
    );
    // Derived uploads given precomputed (a batch worker's) are used as given, not derived again.
    expect(later.derivedUploads).toEqual([{ input: 0, derivation: { name: 'test-doubled', params: {} } }]);
    // (w was read above, so its values are cached on the CPU: the replay's read-back is the check.)
    const again = await later.replay([Float32Array.from([1, 1, 1, 1])], true, [[Float32Array.from([10, 20, 30, 40])]]);
    const expectedAgain = expected.map((v, i) => v + 10 * (i + 1) + 0.5);
    expect(again[0]).toBeCloseTo(
      expectedAgain.reduce((a, b) => a + b),
      4,
    );
    later.dispose();
    tf.dispose([first.x, second.x, w]);
  });

  it('finds a value that changes between two recordings but is not a declared input', () => {
    const w = tf.variable(tf.tensor1d([1, 2, 3, 4]));
    const first = record(w, [1, 1, 1, 1], 0.5);
    const second = record(w, [1, 1, 1, 1], 0.25);
    const undeclared = record(w, [3, 1, 1, 1], 0.25, false);
    const undeclaredAgain = record(w, [1, 1, 1, 1], 0.25, false);
    const plans = [first.plan, second.plan, undeclared.plan, undeclaredAgain.plan] as [
      RecordedStep,
      RecordedStep,
      RecordedStep,
      RecordedStep,
    ];
    // The constant c changed between the first two.
    expect(plans[1].differenceFrom(plans[0])).toMatch(/changes between steps but is not a declared input/);
    // The derived upload 2x changed and was not declared.
    expect(plans[3].differenceFrom(plans[2])).toMatch(/changes between steps but is not a declared input/);
    for (const plan of plans) plan.dispose();
    tf.dispose([first.x, second.x, undeclared.x, undeclaredAgain.x, w]);
  });
});
