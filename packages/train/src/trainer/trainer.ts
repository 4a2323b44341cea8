import {
  derivationsKey,
  type LanguageModel,
  type RecordedStep,
  recordWebgpuStep,
  type Task,
  type TokenBatch,
  throwIfWebgpuFailed,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import type { TrainConfig } from '../config/train-schema.js';
import { AdamW } from '../optimizer/adamw.js';
import { fusedAdamWAvailable } from '../optimizer/adamw-wgsl.js';
import { clipByGlobalNorm } from '../optimizer/clip-gradients.js';
import { fusedGradientScale, fusedGradientScaleAvailable } from '../optimizer/gradient-norm-wgsl.js';
import { learningRateAt } from '../optimizer/schedule.js';
import type { BatchWorker } from './batch-worker.js';
import { headObjective } from './head-objective.js';
import { type StepData, stepData, stepTensors } from './step-data.js';
import { checkStepHealth, firstNonFinite } from './step-health.js';
import { StepReplayer } from './step-replay.js';

export interface StepMetrics {
  /** The update just applied, 1-based. */
  readonly step: number;
  readonly loss: number;
  readonly accuracy: number;
  readonly gradNorm: number;
  readonly learningRate: number;
  readonly tokens: number;
}

export interface EvalMetrics {
  readonly loss: number;
  readonly accuracy: number;
  readonly examples: number;
  /** Summed loss over the counted positions (nats), and how many there were. */
  readonly totalNats: number;
  readonly counted: number;
}

/**
 * Runs updates of a model on a task: seeded data order, AdamW, warm-up + decay schedule,
 * global-norm clipping. Every tensor it makes is disposed before `trainStep` returns.
 */
export class Trainer {
  readonly optimizer: AdamW;
  /** Updates applied so far; also the index of the next training batch. */
  private completed = 0;
  /**
   * The next step's batch, drawn while the GPU finishes this step (the read-back wait), so that
   * drawing it is off the step's critical path. Batches are pure in their index, so this changes
   * nothing but when the work happens.
   */
  private drawnAhead: { index: number; data: StepData } | undefined;
  /** Records and replays steps on webgpu (`train.step_replay`). */
  private readonly replay: StepReplayer;
  /**
   * The next step, already replayed on the GPU while this one's values were read back
   * (`trainStep({ overlapNext: true })`): its values are read by the next `trainStep` or `settle`.
   */
  private submittedAhead: AheadStep | undefined;

  /** Bytes one chunk of the head's logits may take; defaults to the backend's limit (head-objective.ts). */
  private readonly headChunkBytes: number | undefined;
  /** Draws the training batches on another thread (`train.batch_worker`); the trainer disposes it. */
  private readonly batchWorker: BatchWorker | undefined;
  /** `derivationsKey` of each recorded step's derived uploads, computed once. */
  private readonly derivationKeys = new WeakMap<RecordedStep, string>();

  constructor(
    readonly model: LanguageModel,
    readonly task: Task,
    readonly train: TrainConfig,
    options: TrainerOptions = {},
  ) {
    const { betas, eps, weight_decay: weightDecay } = train.optimizer;
    this.optimizer = new AdamW(model.parameters.list(), { betas, eps, weightDecay });
    this.replay = new StepReplayer(train.step_replay);
    this.headChunkBytes = options.headChunkBytes;
    this.batchWorker = options.batchWorker;
  }

  /** The recorded step being replayed, if any (for benchmarks that time replays alone). */
  get recordedStep(): RecordedStep | undefined {
    return this.replay.current;
  }

  /**
   * The arrays a recorded step takes for `batch`, in its input order (the optimiser's step
   * scalars follow them): for measurements that replay `recordedStep` themselves.
   */
  stepInputArrays(batch: TokenBatch): ArrayBufferView[] {
    return stepData(batch, this.train.head_rows).arrays;
  }

  /** Whether steps are replayed on webgpu, and if not, why (`train.step_replay`). */
  get stepReplayStatus(): string {
    return this.replay.status;
  }

  /** How training batches are drawn (`train.batch_worker`), for the run's summary. */
  get batchStatus(): string {
    return this.batchWorker?.status ?? MAIN_THREAD_BATCHES;
  }

  /** Starts drawing batch `index`, which the next step needs: on the worker, else here and now. */
  private drawAhead(index: number): void {
    if (this.batchWorker !== undefined) {
      // Past the run's last batch nothing will take it (a caller stepping beyond asks itself).
      if (index < this.train.steps) this.batchWorker.request(index);
      return;
    }
    try {
      this.drawnAhead = { index, data: this.drawHere(index) };
    } catch {
      // Not now: the next step draws it itself and reports the error there, in its place.
    }
  }

  private drawHere(index: number): StepData {
    return stepData(this.task.trainBatch(index, this.train.batch_size), this.train.head_rows);
  }

  /** Batch `index` from the worker, or drawn here where there is none or it could not. */
  private async stepDataAt(index: number): Promise<StepData> {
    return (await this.batchWorker?.take(index)) ?? this.drawHere(index);
  }

  private async batchAt(index: number): Promise<StepData> {
    const ahead = this.drawnAhead;
    this.drawnAhead = undefined;
    return ahead?.index === index ? ahead.data : this.stepDataAt(index);
  }

  get stepsDone(): number {
    return this.completed;
  }

  /** Continue after `steps` updates (used when resuming from a checkpoint). */
  restoreProgress(steps: number): void {
    if (this.submittedAhead !== undefined)
      throw new Error('restoreProgress with a step submitted ahead: settle() first');
    this.completed = steps;
    this.optimizer.stepCount = steps;
    this.replay.reset();
  }

  /**
   * One update. Async because reading the loss back is asynchronous on GPU backends.
   *
   * With `overlapNext`, when this step and the next are replayed on webgpu, the next step is
   * submitted to the GPU before this one's values are read back, so that the GPU does not wait
   * for the host (the read-back, logging, progress) between steps: the same work in the same
   * order, so the same losses and weights. Until the next `trainStep` (or `settle`) reads it, the
   * weights already hold that next update: pass it only when nothing reads the weights before the
   * next step (the train loop: not before an evaluation, a checkpoint or the last step), and
   * `settle()` before anything else.
   */
  async trainStep(options: { overlapNext?: boolean } = {}): Promise<StepMetrics> {
    const overlapNext = options.overlapNext === true;
    const ahead = this.submittedAhead;
    this.submittedAhead = undefined;
    const step = this.completed + 1;
    let data: StepData;
    let learningRate: number;
    let values: number[];
    if (ahead !== undefined && ahead.index === this.completed) {
      ({ data, learningRate } = ahead);
      values = await this.readReplayed(ahead.plan, ahead.reading, step, overlapNext);
    } else {
      data = await this.batchAt(this.completed);
      learningRate = learningRateAt(this.completed, this.train);
      const mode = this.replay.modeFor(data.shapeKey);
      const plan = this.replay.current;
      values =
        mode === 'replay' && plan !== undefined
          ? await this.readReplayed(plan, this.submitReplay(plan, data, learningRate), step, overlapNext)
          : await this.tfjsStep(data, learningRate, step, mode === 'record');
    }
    const { batch } = data;
    this.completed += 1;
    const [lossValue, normValue, correctValue, countedValue] = values as [number, number, number, number];
    return {
      step: this.completed,
      loss: lossValue,
      accuracy: countedValue > 0 ? correctValue / countedValue : 0,
      gradNorm: normValue,
      learningRate,
      tokens: batch.batchSize * batch.seqLen,
    };
  }

  /** A step through tfjs's ops; with `record`, its GPU commands are recorded for replays. */
  private async tfjsStep(data: StepData, learningRate: number, step: number, record: boolean): Promise<number[]> {
    const parameters = this.model.parameters.list();
    const { inputs, supervision, tensors } = stepTensors(data);
    const stepScalars = fusedAdamWAvailable()
      ? tf.tensor1d(this.optimizer.stepScalars(learningRate, this.optimizer.stepCount + 1))
      : undefined;
    let correct: tf.Scalar | undefined;
    let counted: tf.Scalar | undefined;
    const run = () => {
      // The gradients outlive the update until the norm is read: a non-finite norm names the
      // first non-finite one.
      const { loss, gradNorm, gradients } = tf.tidy(() => {
        const { value, grads } = tf.variableGrads(
          () => {
            // Only a step records a gradient tape, so only a step has activations to checkpoint.
            const objective = headObjective(this.model, inputs, supervision, this.headChunkBytes, {
              activationCheckpointing: this.train.activation_checkpointing,
            });
            correct = tf.keep(objective.correct);
            counted = tf.keep(objective.counted);
            return objective.loss;
          },
          parameters.map((parameter) => parameter.variable),
        );
        const byName: Record<string, tf.Tensor> = {};
        for (const { name, variable } of parameters) {
          const gradient = grads[variable.name];
          if (gradient) byName[name] = gradient;
        }
        if (stepScalars !== undefined && fusedGradientScaleAvailable(Object.values(byName))) {
          // Norm and clip factor in a few dispatches; the AdamW kernel scales each gradient.
          const updateScalars = fusedGradientScale(Object.values(byName), this.train.grad_clip, stepScalars);
          this.optimizer.apply(byName, learningRate, updateScalars);
          return { loss: value, gradNorm: updateScalars.slice([5], [1]).reshape([]), gradients: byName };
        }
        const clipped = clipByGlobalNorm(byName, this.train.grad_clip);
        this.optimizer.apply(clipped.gradients, learningRate, stepScalars);
        return { loss: value, gradNorm: clipped.norm, gradients: byName };
      });
      const scalars = [loss, gradNorm, correct, counted] as tf.Tensor[];
      const packed = tf.tidy(() => tf.stack(scalars.map((tensor) => tensor.cast('float32').reshape([]))));
      tf.dispose(scalars);
      return { value: gradients, output: packed, probes: gradients };
    };
    let gradients: Record<string, tf.Tensor> = {};
    let packed: tf.Tensor | undefined;
    let values: number[];
    try {
      let result: ReturnType<typeof run> | undefined;
      if (record) {
        const stepInputs = [...tensors, ...(stepScalars ? [stepScalars] : [])];
        const recording = recordWebgpuStep({ inputs: stepInputs, state: this.optimizer.stateVariables() }, () => {
          result = run();
          return result;
        });
        this.replay.recorded(recording.plan, recording.refusal, data.shapeKey);
      } else {
        this.replay.ranThroughTfjs();
        result = run();
      }
      const ran = result as ReturnType<typeof run>;
      gradients = ran.value;
      packed = ran.output;
      // A recording keeps the buffers that were live before it out of reuse until it ends, so it can
      // need more memory than a plain step: a failure there says which switch avoids it.
      const during = record
        ? `training step ${step} (recorded for replay; train.step_replay: off records nothing)`
        : `training step ${step}`;
      const reading = readPacked(packed, during);
      this.drawAhead(step);
      values = await reading;
      await checkStepHealth(step, values[0] as number, values[1] as number, () => firstNonFinite(gradients));
    } finally {
      tf.dispose([...tensors, ...(stepScalars ? [stepScalars] : [])]);
      tf.dispose([...(packed ? [packed] : []), ...Object.values(gradients)]);
    }
    return values;
  }

  /**
   * Completes a step submitted ahead by `trainStep({ overlapNext: true })`, if there is one:
   * its metrics, else undefined. Call it before reading the weights (evaluation, checkpoints).
   */
  async settle(): Promise<StepMetrics | undefined> {
    return this.submittedAhead === undefined ? undefined : this.trainStep();
  }

  /** The recorded step replayed on `data` (no tfjs ops): submitted now, its values read later. */
  private submitReplay(plan: RecordedStep, data: StepData, learningRate: number): Promise<Float32Array> {
    const stepScalars = this.optimizer.countReplayedUpdate(learningRate);
    const reading = plan.replay(
      [...data.arrays, stepScalars].slice(0, plan.inputCount),
      true,
      this.precomputedUploads(plan, data),
    );
    // Marked as handled: a step submitted ahead that fails is reported when its values are read.
    reading.catch(() => {});
    return reading;
  }

  /**
   * The derived uploads that came with `data` from the batch worker, if they were computed for
   * `plan`'s derivations; and the worker told to compute them for the batches it draws next.
   */
  private precomputedUploads(plan: RecordedStep, data: StepData): readonly ArrayBufferView[][] | undefined {
    if (this.batchWorker === undefined || plan.derivedUploads.length === 0) return undefined;
    let key = this.derivationKeys.get(plan);
    if (key === undefined) {
      key = derivationsKey(plan.derivedUploads);
      this.derivationKeys.set(plan, key);
      this.batchWorker.deriveUploads(plan.derivedUploads);
    }
    return data.derived?.key === key ? data.derived.values : undefined;
  }

  /**
   * While the GPU runs step `index` − 1: the next step's batch drawn, and with `overlapNext`, that
   * step submitted too when it replays the same recording.
   */
  private async prepareNext(index: number, overlapNext: boolean): Promise<void> {
    const plan = this.replay.current;
    if (!overlapNext || index >= this.train.steps || plan === undefined) {
      this.drawAhead(index);
      return;
    }
    let data: StepData;
    try {
      data = await this.stepDataAt(index);
    } catch {
      return; // the next step draws it itself and reports the error there
    }
    if (this.replay.modeFor(data.shapeKey) !== 'replay' || this.replay.current !== plan) {
      this.drawnAhead = { index, data };
      return;
    }
    const learningRate = learningRateAt(index, this.train);
    this.submittedAhead = { index, data, learningRate, plan, reading: this.submitReplay(plan, data, learningRate) };
  }

  /** The values of replayed step `step` (1-based), checked; the next step prepared while they come back. */
  private async readReplayed(
    plan: RecordedStep,
    reading: Promise<Float32Array>,
    step: number,
    overlapNext: boolean,
  ): Promise<number[]> {
    const during = `training step ${step}`;
    let values: Float32Array;
    try {
      await this.prepareNext(step, overlapNext);
      values = await reading;
    } catch (error) {
      throwIfWebgpuFailed(during);
      throw error;
    }
    throwIfWebgpuFailed(during);
    const [loss, norm] = values as unknown as [number, number];
    await checkStepHealth(step, loss, norm, async () => {
      for (const name of plan.probeNames) {
        const gradient = await plan.readProbe(name);
        if (gradient?.some((value) => !Number.isFinite(value))) return name;
      }
      return undefined;
    });
    return Array.from(values);
  }

  /** Loss and accuracy over the task's whole test set, counting only supervised positions. */
  async evaluate(batchSize = this.train.batch_size): Promise<EvalMetrics> {
    if (this.submittedAhead !== undefined)
      throw new Error(`evaluation with training step ${this.completed + 1} submitted ahead: settle() first`);
    let lossSum = 0;
    let correctSum = 0;
    let countedSum = 0;
    let examples = 0;
    for (const batch of this.task.testBatches(batchSize)) {
      const [loss, correct, counted] = tf.tidy(() => {
        const { inputs, supervision } = stepTensors(stepData(batch, this.train.head_rows));
        const { loss, correct, counted } = headObjective(this.model, inputs, supervision, this.headChunkBytes);
        return [loss, correct, counted];
      });
      const scalars = [loss, correct, counted] as tf.Tensor[];
      let values: number[];
      try {
        values = await readScalars(scalars, 'evaluation');
      } finally {
        tf.dispose(scalars);
      }
      const [l, c, n] = values as [number, number, number];
      lossSum += l * n;
      correctSum += c;
      countedSum += n;
      examples += batch.batchSize;
    }
    return {
      loss: countedSum > 0 ? lossSum / countedSum : Number.NaN,
      accuracy: countedSum > 0 ? correctSum / countedSum : 0,
      examples,
      totalNats: lossSum,
      counted: countedSum,
    };
  }

  dispose(): void {
    this.replay.dispose();
    this.optimizer.dispose();
    void this.batchWorker?.dispose();
  }
}

/**
/**
 * Values of scalar tensors, read without blocking (webgpu in Node cannot read synchronously), in
 * ONE read-back: on a GPU each read is a submit, a copy and a wait for the queue to drain. A GPU
 * error since the last read is thrown here, `during` naming the step: it caused the values.
 */
async function readScalars(tensors: tf.Tensor[], during: string): Promise<number[]> {
  const packed = tf.tidy(() => tf.stack(tensors.map((tensor) => tensor.cast('float32').reshape([]))));
  try {
    return await readPacked(packed, during);
  } finally {
    packed.dispose();
  }
}

/** The values of a 1-D float32 tensor, read once; a GPU error since the last read is thrown instead. */
async function readPacked(packed: tf.Tensor, during: string): Promise<number[]> {
  let values: Float32Array | Int32Array | Uint8Array;
  try {
    values = await packed.data();
  } catch (error) {
    throwIfWebgpuFailed(during);
    throw error;
  }
  throwIfWebgpuFailed(during);
  return Array.from(values);
}

/** `Trainer.batchStatus` without a batch worker. */
export const MAIN_THREAD_BATCHES = 'on the main thread';

export interface TrainerOptions {
  /** Bytes one chunk of the head's logits may take; defaults to the backend's limit (head-objective.ts). */
  readonly headChunkBytes?: number;
  /** Draws the training batches on another thread (`train.batch_worker`); the trainer disposes it. */
  readonly batchWorker?: BatchWorker;
}

/** A replayed step submitted before the previous one's values were read (`trainStep`'s `overlapNext`). */
interface AheadStep {
  /** Its batch index (the number of updates before it). */
  readonly index: number;
  readonly data: StepData;
  readonly learningRate: number;
  readonly plan: RecordedStep;
  readonly reading: Promise<Float32Array>;
}
