import {
  annotateRun,
  applyOverride,
  backendFromEnvironment,
  configDataSource,
  InterleaveError,
  parseOverride,
  readMetricHistory,
  runHoldingArtifact,
  selectBackend,
  type Tracker,
} from '@interleave/core';
import { locateCheckpoint } from '../../checkpoint/checkpoint-location.js';
import { loadModelFromCheckpoint } from '../../checkpoint/load-model.js';
import { type CheckpointTarget, resolveCheckpointTarget } from '../../checkpoint/run-checkpoint.js';
import { type ExperimentConfig, loadExperimentConfig } from '../../config/experiment-config.js';
import { type ResolvedEvaluation, resolveEvaluation, runEvaluations } from '../../run/evaluations.js';
import { type Command, parseCommandLine } from '../command.js';

export const evalCommand: Command = {
  name: 'eval',
  usage: `  eval <run-id|run-dir|checkpoint-dir|model.safetensors> [--task NAME] [--set key=value ...]
      evaluate a trained model; metrics go to the model's MLflow run when it has one
      --task NAME        an evaluation (mqar_grid, induction_extrapolation, or a plugin's);
                         without it, the evaluations in the run config's evals:
      --set key=value    a key of that evaluation, value in YAML (e.g. --set "lengths=[64,4096]")
      --uri URI          the MLflow store (path or http(s)://) in which to look up a run id (default ./mlruns)
      --config FILE      the config the model was trained with, for weights that record none
      --no-log           print the metrics only`,
  async run(args) {
    const { values, positionals } = parseCommandLine(args, {
      task: { type: 'string' },
      set: { type: 'string', multiple: true },
      uri: { type: 'string', default: './mlruns' },
      config: { type: 'string' },
      'no-log': { type: 'boolean', default: false },
    });
    if (positionals.length !== 1) {
      throw new InterleaveError('eval takes one model: interleave eval <run-id|run-dir|checkpoint> [--task NAME]');
    }
    const resolved = await resolveCheckpointTarget(positionals[0] as string, values.uri as string);
    try {
      return await evaluate(resolved, values);
    } finally {
      await resolved.dispose();
    }
  },
};

async function evaluate(
  resolved: CheckpointTarget,
  values: { task?: string; set?: string[]; config?: string; 'no-log'?: boolean },
): Promise<number> {
  const target = resolved.path;
  const location = await locateCheckpoint(target);
  const configFile = values.config ?? location.runConfigFile;
  const config = configFile === undefined ? undefined : (await loadExperimentConfig(configFile)).config;

  await selectBackend(backendFromEnvironment() ?? 'auto', 'INTERLEAVE_BACKEND');
  const { model, blueprint } = await loadModelFromCheckpoint(target, { config: values.config });
  try {
    const evaluations = chooseEvaluations(values.task, values.set ?? [], config, blueprint.container);
    const run = values['no-log'] ? undefined : (resolved.run ?? runHoldingArtifact(location.weightsFile));
    const tracker = run === undefined ? printingTracker() : await annotateRun(run);
    const step =
      run === undefined ? 0 : ((await readMetricHistory(run.uri, run.runId, 'train/loss')).at(-1)?.step ?? 0);
    const metrics = await runEvaluations(evaluations, {
      model,
      seed: config?.seed ?? 0,
      trainingTask: config?.task ?? { name: 'unknown' },
      tracker,
      step,
      log: (line) => process.stdout.write(`${line}\n`),
    });
    // A run on a server gets what was logged now; the file store finishes any line still being written.
    await tracker.flush?.();
    process.stdout.write(`${JSON.stringify(metrics)}\n`);
    if (run !== undefined) process.stdout.write(`logged ${Object.keys(metrics).length} metrics to run ${run.runId}\n`);
    return 0;
  } finally {
    model.dispose();
  }
}

function chooseEvaluations(
  task: string | undefined,
  settings: readonly string[],
  config: ExperimentConfig | undefined,
  container: Parameters<typeof resolveEvaluation>[2],
): ResolvedEvaluation[] {
  if (task === undefined) {
    if (settings.length > 0) throw new InterleaveError('--set needs --task: it sets a key of that evaluation');
    const entries = config?.evals ?? [];
    if (entries.length === 0) {
      throw new InterleaveError('the run config has no evals: entries; name one with --task (e.g. --task mqar_grid)');
    }
    const source = configDataSource('the run config');
    return entries.map((entry, index) => resolveEvaluation(entry, ['evals', index], container, source));
  }
  const entry: Record<string, unknown> = { task };
  for (const text of settings) applyOverride(entry, parseOverride(text));
  return [resolveEvaluation(entry as { task: string }, [], container, configDataSource(`--task ${task}`))];
}

/** Where metrics go when the model is not in a run, or with --no-log: nowhere but stdout. */
function printingTracker(): Tracker {
  const nothing = async () => {};
  return {
    runId: '',
    experimentId: '',
    artifactLocation: '',
    logParams: nothing,
    logMetrics: nothing,
    setTags: nothing,
    logArtifact: nothing,
    end: nothing,
  };
}
