import { execFileSync } from 'node:child_process';
import { dirname, isAbsolute, join, relative } from 'node:path';
import {
  architectureName,
  backendFromEnvironment,
  capabilitiesOf,
  configHash,
  flattenForParams,
  formatFlops,
  InterleaveError,
  LanguageModel,
  openTracker,
  resumeTracker,
  SeededRandom,
  selectBackend,
  type Tracker,
} from '@interleave/core';
import { stringify } from 'yaml';
import { configMetadata, MODEL_FILE, writeCheckpoint, writeModelWeights } from '../checkpoint/checkpoint.js';
import { findResumableRun, restoreCheckpoint } from '../checkpoint/resume.js';
import { ProgressReporter, type ProgressStream } from '../trainer/progress.js';
import { type EvalMetrics, Trainer } from '../trainer/trainer.js';
import { runEvaluations } from './evaluations.js';
import { type PreparedRun, prepareRun } from './prepare-run.js';

export interface TrainRunOptions {
  configFile: string;
  overrides?: readonly string[];
  /** Where progress and the summary go; defaults to stdout. */
  output?: ProgressStream;
  /** Set to stop training early (e.g. on SIGINT): the run ends KILLED after a checkpoint. */
  stopSignal?: { stopped: boolean };
  /** Continue this MLflow run from its last checkpoint instead of starting a new run. */
  resumeRunId?: string;
  /** The MLflow run name; defaults to `tracking.run_name`, else the config's `name`. */
  runName?: string;
  /** Extra MLflow tags for the run, e.g. a sweep's `mlflow.parentRunId` and trial id. */
  tags?: Readonly<Record<string, string>>;
  /**
   * Asked just before a run that completed every step is marked FINISHED: resolves to nothing
   * to finish it, or to the reason it must not finish (a sweep trial that another process
   * finished first). The run then ends KILLED, with the reason in the tag `interleave.killed_reason`.
   */
  beforeFinish?: (runId: string) => Promise<string | undefined>;
}

export interface TrainRunResult {
  runId: string;
  experimentId: string;
  artifactLocation: string;
  backend: string;
  steps: number;
  seconds: number;
  losses: number[];
  finalEval: EvalMetrics;
  status: 'FINISHED' | 'KILLED';
  /** Why `beforeFinish` kept a complete run from finishing; absent otherwise. */
  killedReason?: string;
}

/** config → container → model → trainer → tracker: one training run, logged to MLflow. */
export async function trainFromConfig(options: TrainRunOptions): Promise<TrainRunResult> {
  const prepared = await prepareRun(options.configFile, options.overrides);
  return runPrepared(prepared, options);
}

async function runPrepared(prepared: PreparedRun, options: TrainRunOptions): Promise<TrainRunResult> {
  const out = options.output ?? process.stdout;
  const { loaded, container, layers, task } = prepared;
  const { config } = loaded;
  const environmentBackend = backendFromEnvironment();
  const backend = await selectBackend(
    environmentBackend ?? config.backend,
    environmentBackend ? 'INTERLEAVE_BACKEND' : `${loaded.file} (backend: ${config.backend})`,
  );
  out.write(`backend: ${backend.detail}\n`);

  const rng = new SeededRandom(config.seed);
  const model = LanguageModel.build({
    container,
    config: config.model,
    layers,
    rng,
    backend: capabilitiesOf(backend.name),
  });
  const taskInstance = task.definition.create(task.config, { vocabSize: config.model.vocab_size, seed: config.seed });
  const trainer = new Trainer(model, taskInstance, config.train);
  // Analytic training compute (SPEC §4.3): FLOPs per token at the task's sequence length,
  // rounded to whole FLOPs (Hyena's FFT and attention's average window are fractional).
  const modelFlops = model.flopsPerToken(taskInstance.seqLen);
  // The recurrent state per sequence at the training length: the x-axis of accuracy vs. state size.
  const modelState = model.stateBytesPerSequence(taskInstance.seqLen);
  const flops = { total: Math.round(modelFlops.total), forward: Math.round(modelFlops.forward) };
  const hash = configHash(loaded.resolved);
  const runName = options.runName ?? config.tracking.run_name ?? config.name;
  let tracker: Tracker | undefined;
  try {
    if (options.resumeRunId === undefined) {
      tracker = await openTracker({ uri: config.tracking.uri, experiment: config.tracking.experiment, runName });
    } else {
      const resumable = await findResumableRun(
        config.tracking.uri,
        config.tracking.experiment,
        options.resumeRunId,
        hash,
      );
      tracker = await resumeTracker({
        uri: config.tracking.uri,
        runId: options.resumeRunId,
        afterStep: resumable.state.step,
      });
      await restoreCheckpoint(resumable.checkpointDirectory, trainer);
      out.write(`resuming run ${options.resumeRunId} from step ${resumable.state.step}\n`);
    }
    out.write(
      `model: ${layers.length} layers (${layers.map((layer) => layer.block.name).join(', ')}), ${model.parameters.count().toLocaleString('en-US')} parameters\n` +
        `compute: ${formatFlops(flops.total)}/token (forward+backward)\n` +
        `task: ${taskInstance.description}\n` +
        `run: ${tracker.runId} (experiment '${config.tracking.experiment}', ${config.tracking.uri})\n`,
    );
    await tracker.setTags({
      'interleave.backend': backend.name,
      'interleave.backend_detail': backend.detail,
      'interleave.config_hash': hash,
      'interleave.config_file': loaded.file,
      'interleave.architecture': architectureName(layers),
      ...gitTags(loaded.file),
      ...options.tags,
    });
    await tracker.logParams({
      ...flattenForParams(loaded.resolved),
      'model.parameters': model.parameters.count(),
      'compute.flops_per_token': flops.total,
      'compute.forward_flops_per_token': flops.forward,
      'model.state_bytes_per_sequence': modelState.bytes,
      'model.state_grows_with_length': modelState.growsWithLength,
    });
    await tracker.logArtifact('config.yaml', stringify(loaded.resolved));
    const result = await trainLoop(trainer, tracker, out, options.stopSignal, {
      seed: config.seed,
      configHash: hash,
      backend: backend.name,
      metadata: configMetadata(loaded),
      flopsPerToken: flops.total,
    });
    await writeModelWeights(join(tracker.artifactLocation, 'checkpoint', MODEL_FILE), model, {
      config_hash: hash,
      ...configMetadata(loaded),
    });
    if (result.status === 'FINISHED' && prepared.evaluations.length > 0) {
      await runEvaluations(prepared.evaluations, {
        model,
        seed: config.seed,
        trainingTask: config.task,
        tracker,
        step: result.steps,
        log: (line) => out.write(`${line}\n`),
      });
    }
    const killedReason = result.status === 'FINISHED' ? await options.beforeFinish?.(tracker.runId) : undefined;
    if (killedReason !== undefined) {
      await tracker.setTags({ 'interleave.killed_reason': killedReason });
      result.status = 'KILLED';
    }
    await tracker.end(result.status);
    out.write(
      `final test accuracy ${result.finalEval.accuracy.toFixed(4)} (loss ${result.finalEval.loss.toFixed(4)}, ${result.finalEval.examples} examples) ` +
        `after ${result.steps} steps in ${result.seconds.toFixed(1)}s on ${backend.name}\n` +
        `weights: ${displayPath(join(tracker.artifactLocation, 'checkpoint', MODEL_FILE))}\n` +
        `look at the run with: MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri ${config.tracking.uri}\n`,
    );
    return {
      ...result,
      ...(killedReason === undefined ? {} : { killedReason }),
      runId: tracker.runId,
      experimentId: tracker.experimentId,
      artifactLocation: tracker.artifactLocation,
      backend: backend.name,
    };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    await tracker?.setTags({ 'interleave.error': message.split('\n')[0]?.slice(0, 4000) ?? '' }).catch(() => undefined);
    await tracker?.end('FAILED').catch(() => undefined);
    throw error;
  } finally {
    trainer.dispose();
    model.dispose();
  }
}

/** What every checkpoint of a run records besides the step: enough to resume and to reload. */
interface RunIdentity {
  seed: number;
  configHash: string;
  backend: string;
  metadata: Record<string, string>;
  /** Analytic forward+backward FLOPs per training token, for `compute/flops`. */
  flopsPerToken: number;
}

async function trainLoop(
  trainer: Trainer,
  tracker: Tracker,
  out: ProgressStream,
  stopSignal: { stopped: boolean } | undefined,
  identity: RunIdentity,
) {
  const { steps, eval_every: evalEvery, checkpoint_every: checkpointEvery, log_every: logEvery } = trainer.train;
  const progress = new ProgressReporter(out, steps, logEvery, trainer.stepsDone);
  const losses: number[] = [];
  const pending: Record<string, number>[] = [];
  const flush = async (step: number) => {
    for (const metrics of pending.splice(0)) await tracker.logMetrics(metrics, step);
  };
  const checkpoint = async () =>
    writeCheckpoint(
      join(tracker.artifactLocation, 'checkpoint'),
      trainer,
      {
        step: trainer.stepsDone,
        data_position: trainer.stepsDone,
        seed: identity.seed,
        config_hash: identity.configHash,
        backend: identity.backend,
      },
      identity.metadata,
    );
  let finalEval: EvalMetrics | undefined;
  while (trainer.stepsDone < steps && !stopSignal?.stopped) {
    const metrics = await trainer.trainStep();
    losses.push(metrics.loss);
    progress.update(metrics);
    if (!Number.isFinite(metrics.loss)) {
      throw new InterleaveError(`loss became ${metrics.loss} at step ${metrics.step}; lower train.optimizer.lr`);
    }
    await tracker.logMetrics(
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
    );
    const last = metrics.step === steps;
    if ((evalEvery !== null && metrics.step % evalEvery === 0) || last) {
      const evaluation = await trainer.evaluate();
      finalEval = evaluation;
      progress.log(
        `eval @ step ${metrics.step}: test loss ${evaluation.loss.toFixed(4)}, accuracy ${evaluation.accuracy.toFixed(4)}`,
      );
      pending.push({ 'eval/loss': evaluation.loss, 'eval/accuracy': evaluation.accuracy });
      await flush(metrics.step);
    }
    if (checkpointEvery !== null && metrics.step % checkpointEvery === 0 && !last) await checkpoint();
  }
  progress.finish();
  const status = trainer.stepsDone < steps ? ('KILLED' as const) : ('FINISHED' as const);
  if (finalEval === undefined) {
    finalEval = await trainer.evaluate();
    await tracker.logMetrics({ 'eval/loss': finalEval.loss, 'eval/accuracy': finalEval.accuracy }, trainer.stepsDone);
  }
  await checkpoint();
  return { steps: trainer.stepsDone, seconds: progress.elapsedSeconds, losses, finalEval, status };
}

/** Paths under the working directory are shown relative to it, as the user typed them. */
function displayPath(path: string): string {
  const local = relative(process.cwd(), path);
  return local.startsWith('..') || isAbsolute(local) ? path : local;
}

/** The git commit of the config's checkout, as MLflow's own clients tag it; none outside git. */
function gitTags(configFile: string): Record<string, string> {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], {
      cwd: dirname(configFile),
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .toString()
      .trim();
    return commit ? { 'mlflow.source.git.commit': commit } : {};
  } catch {
    return {};
  }
}
