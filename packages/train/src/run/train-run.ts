import { isAbsolute, join, relative } from 'node:path';
import { formatFlops, isServerUri, openStore, type Tracker } from '@interleave/core';
import { CHECKPOINT_FOLDER, configMetadata, MODEL_FILE } from '../checkpoint/checkpoint.js';
import type { LoadedExperiment } from '../config/experiment-config.js';
import type { ProgressStream } from '../trainer/progress.js';
import { type EvalMetrics, MAIN_THREAD_BATCHES, type Trainer } from '../trainer/trainer.js';
import { type AssembledRun, assembleRun, selectRunBackend } from './assemble-run.js';
import { runEvaluations } from './evaluations.js';
import { type PreparedRun, prepareLoadedRun, prepareRun } from './prepare-run.js';
import { endRun, failRun, openRunTracker, recordRunSetup } from './run-tracking.js';
import { type TrainLoopResult, trainLoop } from './train-loop.js';

/**
 * What to train: a config file with `--set` overrides (what the CLI is given), or a config
 * already loaded — from a file, or config data such as a sweep trial's — whose `label` names
 * it in messages.
 */
export type RunConfigInput =
  | { readonly configFile: string; readonly overrides?: readonly string[] }
  | { readonly config: LoadedExperiment };

export interface TrainRunSettings {
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

export type TrainRunOptions = RunConfigInput & TrainRunSettings;

/** config → container → model → trainer → tracker: one training run, logged to MLflow. */
export async function trainFromConfig(options: TrainRunOptions): Promise<TrainRunResult> {
  const prepared =
    'config' in options
      ? await prepareLoadedRun(options.config)
      : await prepareRun(options.configFile, options.overrides);
  return runPrepared(prepared, options);
}

/** The stages of a run, in order; each is a function a reader can open on its own. */
async function runPrepared(prepared: PreparedRun, options: TrainRunSettings): Promise<TrainRunResult> {
  const out = options.output ?? process.stdout;
  const { config } = prepared.loaded;
  const backend = await selectRunBackend(prepared.loaded, out);
  const run = assembleRun(prepared, backend);
  let tracker: Tracker | undefined;
  try {
    const runName = options.runName ?? config.tracking.run_name ?? config.name;
    tracker = await openRunTracker(prepared, run, { runName, resumeRunId: options.resumeRunId }, out);
    out.write(runHeader(prepared, run, tracker));
    await recordRunSetup(tracker, prepared, run, backend, options.tags);
    // What the task learned from its data (an lm run's trained tokenizer), for generate and eval.
    for (const [name, text] of Object.entries(run.task.artifacts ?? {})) await tracker.logArtifact(name, text);
    const trained = await trainLoop(run.trainer, tracker, out, options.stopSignal, {
      seed: config.seed,
      configHash: run.configHash,
      backend: backend.name,
      metadata: configMetadata(prepared.loaded),
      flopsPerToken: run.flops.total,
    });
    if (trained.status === 'FINISHED' && prepared.evaluations.length > 0) {
      await runEvaluations(prepared.evaluations, {
        model: run.model,
        seed: config.seed,
        trainingTask: config.task,
        tracker,
        step: trained.steps,
        log: (line) => out.write(`${line}\n`),
      });
    }
    const ended = await endRun(tracker, trained.status, options.beforeFinish);
    out.write(runSummary(prepared, trained, backend.name, tracker, run.trainer));
    return {
      ...trained,
      ...ended,
      runId: tracker.runId,
      experimentId: tracker.experimentId,
      artifactLocation: tracker.artifactLocation,
      backend: backend.name,
    };
  } catch (error) {
    await failRun(tracker, error);
    throw error;
  } finally {
    run.dispose();
  }
}

/** The run's final weights: the last checkpoint's, which `trainLoop` always writes. */
export function finalWeightsFile(artifactLocation: string): string {
  return join(artifactLocation, CHECKPOINT_FOLDER, MODEL_FILE);
}

function runHeader(prepared: PreparedRun, run: AssembledRun, tracker: Tracker): string {
  const { layers } = prepared;
  const { tracking } = prepared.loaded.config;
  return (
    `model: ${layers.length} layers (${layers.map((layer) => layer.block.name).join(', ')}), ${run.model.parameters.count().toLocaleString('en-US')} parameters\n` +
    `compute: ${formatFlops(run.flops.total)}/token (forward+backward)\n` +
    `task: ${run.task.description}\n` +
    `run: ${tracker.runId} (experiment '${tracking.experiment}', ${tracking.uri})\n`
  );
}

function runSummary(
  prepared: PreparedRun,
  trained: TrainLoopResult,
  backend: string,
  tracker: Tracker,
  trainer: Trainer,
): string {
  const { finalEval } = trained;
  const { uri } = prepared.loaded.config.tracking;
  const where = isServerUri(uri)
    ? `weights: artifact ${CHECKPOINT_FOLDER}/${MODEL_FILE} of run ${tracker.runId} (interleave eval|generate|export ${tracker.runId} --uri ${openStore(uri).displayUri})\n` +
      `look at the run at: ${openStore(uri).displayUri}/#/experiments/${tracker.experimentId}/runs/${tracker.runId}\n`
    : `weights: ${displayPath(finalWeightsFile(tracker.artifactLocation))}\n` +
      `look at the run with: MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri ${uri}\n`;
  return (
    `final test accuracy ${finalEval.accuracy.toFixed(4)} (loss ${finalEval.loss.toFixed(4)}, ${finalEval.examples} examples) ` +
    `after ${trained.steps} steps in ${trained.seconds.toFixed(1)}s on ${backend}\n` +
    (backend === 'webgpu' ? `step replay: ${trainer.stepReplayStatus}\n` : '') +
    (trainer.batchStatus === MAIN_THREAD_BATCHES ? '' : `batches: drawn ${trainer.batchStatus}\n`) +
    where
  );
}

/** Paths under the working directory are shown relative to it, as the user typed them. */
function displayPath(path: string): string {
  const local = relative(process.cwd(), path);
  return local.startsWith('..') || isAbsolute(local) ? path : local;
}
