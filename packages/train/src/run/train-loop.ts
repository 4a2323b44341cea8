import { InterleaveError, type Task, type Tracker } from '@interleave/core';
import { languageModelMetrics } from '@interleave/eval';
import { CHECKPOINT_FOLDER, writeCheckpoint } from '../checkpoint/checkpoint.js';
import { logFolderArtifacts } from '../checkpoint/run-artifacts.js';
import { ProgressReporter, type ProgressStream } from '../trainer/progress.js';
import type { EvalMetrics, StepMetrics, Trainer } from '../trainer/trainer.js';
import { MetricWrites } from './metric-writes.js';

/** What every checkpoint of a run records besides the step: enough to resume and to reload. */
export interface RunIdentity {
  seed: number;
  configHash: string;
  backend: string;
  /** The config, as weights-file metadata (`configMetadata`). */
  metadata: Record<string, string>;
  /** Analytic forward+backward FLOPs per training token, for `compute/flops`. */
  flopsPerToken: number;
}

export interface TrainLoopResult {
  steps: number;
  seconds: number;
  losses: number[];
  finalEval: EvalMetrics;
  /** FINISHED: every step was trained; KILLED: `stopSignal` stopped it first. */
  status: 'FINISHED' | 'KILLED';
}

/**
 * Trains until the last step or `stopSignal`, logging metrics to `tracker`, evaluating every
 * `eval_every` steps and checkpointing every `checkpoint_every`. It always ends with a checkpoint
 * in the run's artifacts, whose `model.safetensors` is the run's final weights: with the step,
 * the config hash and the config in its metadata.
 */
export async function trainLoop(
  trainer: Trainer,
  tracker: Tracker,
  out: ProgressStream,
  stopSignal: { stopped: boolean } | undefined,
  identity: RunIdentity,
): Promise<TrainLoopResult> {
  const {
    steps,
    eval_every: evalEvery,
    checkpoint_every: checkpointEvery,
    log_every: logEvery,
    metrics_every: metricsEvery,
  } = trainer.train;
  const progress = new ProgressReporter(out, steps, logEvery, trainer.stepsDone);
  const losses: number[] = [];
  const pending: Record<string, number>[] = [];
  const stepWrites = new MetricWrites();
  const flush = async (step: number) => {
    await stepWrites.settle();
    for (const metrics of pending.splice(0)) await tracker.logMetrics(metrics, step);
  };
  // Checkpoints are artifacts of the run, stored wherever its tracking store keeps artifacts.
  const checkpoint = async () => {
    await stepWrites.settle();
    await logFolderArtifacts(tracker, CHECKPOINT_FOLDER, (folder) =>
      writeCheckpoint(
        folder,
        trainer,
        {
          step: trainer.stepsDone,
          data_position: trainer.stepsDone,
          seed: identity.seed,
          config_hash: identity.configHash,
          backend: identity.backend,
        },
        identity.metadata,
      ),
    );
  };
  /** The newest step whose metrics were not written (`metrics_every`): written if the run stops there. */
  let unwritten: StepMetrics | undefined;
  const logStep = async (metrics: StepMetrics, write: boolean) => {
    losses.push(metrics.loss);
    progress.update(metrics);
    await writeStep(metrics, write);
  };
  const writeStep = async (metrics: StepMetrics, write: boolean) => {
    unwritten = write ? undefined : metrics;
    if (!write) return;
    await stepWrites.add(
      tracker.logMetrics(
        {
          'train/loss': metrics.loss,
          'train/accuracy': metrics.accuracy,
          'train/grad_norm': metrics.gradNorm,
          'train/lr': metrics.learningRate,
          'train/tokens_per_second': progress.tokensPerSecond,
          // Cumulative since step 0 (a resumed run continues the count); the optimizer's
          // ~10 FLOPs per parameter per step are negligible and not counted.
          'compute/tokens': metrics.step * metrics.tokens,
          'compute/flops': metrics.step * metrics.tokens * identity.flopsPerToken,
        },
        metrics.step,
      ),
    );
  };
  /** Whether anything reads the weights after step `step` (1-based): then no step runs ahead of it. */
  const readsWeightsAfter = (step: number) =>
    step >= steps ||
    (evalEvery !== null && step % evalEvery === 0) ||
    (checkpointEvery !== null && step % checkpointEvery === 0);
  let finalEval: EvalMetrics | undefined;
  while (trainer.stepsDone < steps && !stopSignal?.stopped) {
    // On webgpu with replayed steps the next step goes to the GPU before this one's loss is read
    // and logged, so the GPU does not wait on the host between steps (Trainer.trainStep).
    const metrics = await trainer.trainStep({ overlapNext: !readsWeightsAfter(trainer.stepsDone + 1) });
    const last = metrics.step === steps;
    const evaluates = evalEvery !== null && metrics.step % evalEvery === 0;
    await logStep(metrics, last || evaluates || metrics.step % metricsEvery === 0);
    if (evaluates || last) {
      const evaluation = await evaluateFinite(trainer, metrics.step);
      finalEval = evaluation;
      const text = textMetrics(trainer.task, evaluation);
      progress.log(
        `eval @ step ${metrics.step}: test loss ${evaluation.loss.toFixed(4)}, accuracy ${evaluation.accuracy.toFixed(4)}` +
          (text === undefined
            ? ''
            : `, perplexity ${text['eval/perplexity']?.toFixed(2)}, ${text['eval/bits_per_byte']?.toFixed(4)} bits/byte`),
      );
      pending.push({ 'eval/loss': evaluation.loss, 'eval/accuracy': evaluation.accuracy, ...text });
      await flush(metrics.step);
    }
    if (checkpointEvery !== null && metrics.step % checkpointEvery === 0 && !last) await checkpoint();
  }
  // Stopped (stopSignal) with a step already submitted: it is completed and counted before the
  // final evaluation and checkpoint read the weights it wrote.
  const settled = await trainer.settle();
  if (settled !== undefined) {
    await logStep(settled, true);
    finalEval = undefined;
  }
  // A run stopped between written steps still writes its last one (its step count and compute).
  if (unwritten !== undefined) await writeStep(unwritten, true);
  progress.finish();
  await stepWrites.settle();
  const status = trainer.stepsDone < steps ? ('KILLED' as const) : ('FINISHED' as const);
  if (finalEval === undefined) {
    finalEval = await evaluateFinite(trainer, trainer.stepsDone);
    await tracker.logMetrics(
      { 'eval/loss': finalEval.loss, 'eval/accuracy': finalEval.accuracy, ...textMetrics(trainer.task, finalEval) },
      trainer.stepsDone,
    );
  }
  await checkpoint();
  return { steps: trainer.stepsDone, seconds: progress.elapsedSeconds, losses, finalEval, status };
}

/** Perplexity and bits per byte, for a task over text (one that knows the bytes its test set covers). */
function textMetrics(task: Task, evaluation: EvalMetrics): Record<string, number> | undefined {
  if (task.evaluationBytes === undefined) return undefined;
  const { perplexity, bitsPerByte } = languageModelMetrics(
    evaluation.totalNats,
    evaluation.counted,
    task.evaluationBytes,
  );
  return { 'eval/perplexity': perplexity, 'eval/bits_per_byte': bitsPerByte };
}

/** An evaluation whose loss is not a number fails the run, as a non-finite training loss does. */
async function evaluateFinite(trainer: Trainer, step: number): Promise<EvalMetrics> {
  const evaluation = await trainer.evaluate();
  if (!Number.isFinite(evaluation.loss)) {
    throw new InterleaveError(
      `the test loss became ${evaluation.loss} in the evaluation at step ${step} (${evaluation.examples} examples)`,
    );
  }
  return evaluation;
}
