import {
  type ConfigSource,
  type Container,
  type EvaluationDefinition,
  type LanguageModel,
  type LoadedConfig,
  REGISTRIES,
  registryOf,
  resolveByName,
  type Tracker,
} from '@interleave/core';

/** An entry of `evals:` (or `--task` of `interleave eval`), checked against its evaluation's schema. */
export interface ResolvedEvaluation {
  readonly definition: EvaluationDefinition<unknown>;
  readonly config: unknown;
}

/** Checks every `evals:` entry before training starts, so a typo fails fast with file:line:col. */
export function resolveEvaluations(loaded: LoadedConfig, container: Container): ResolvedEvaluation[] {
  return loaded.config.evals.map((entry, index) => resolveEvaluation(entry, ['evals', index], container, loaded));
}

export function resolveEvaluation(
  entry: { task: string; [key: string]: unknown },
  path: (string | number)[],
  container: Container,
  source: ConfigSource,
): ResolvedEvaluation {
  const { task, ...keys } = entry;
  return resolveByName(registryOf(container, REGISTRIES.evaluations), task, keys, {
    path,
    nameKey: 'task',
    source,
  });
}

/**
 * Runs evaluations on a trained model and logs their metrics to `tracker` at `step` (the
 * run's last training step), so they sit beside the training curves of the same run.
 */
export async function runEvaluations(
  evaluations: readonly ResolvedEvaluation[],
  context: {
    model: LanguageModel;
    seed: number;
    trainingTask: { name: string; [key: string]: unknown };
    tracker: Tracker;
    step: number;
    log: (line: string) => void;
  },
): Promise<Record<string, number>> {
  const all: Record<string, number> = {};
  for (const { definition, config } of evaluations) {
    context.log(`evaluation ${definition.name}: ${definition.description}`);
    const result = await definition.run(config, {
      model: context.model,
      seed: context.seed,
      trainingTask: context.trainingTask,
      log: (line) => context.log(`  ${line}`),
    });
    await context.tracker.logMetrics({ ...result.metrics }, context.step);
    if (result.tags !== undefined) await context.tracker.setTags({ ...result.tags });
    Object.assign(all, result.metrics);
  }
  return all;
}
