import type { z } from 'zod';
import type { LanguageModel } from '../model/language-model.js';

/** What an evaluation gets: a trained model and what it was trained on. */
export interface EvaluationContext {
  readonly model: LanguageModel;
  /** The run's seed: evaluations derive their test data from it, separately from training data. */
  readonly seed: number;
  /** The training task's entry (`task:` of the config), for defaults such as its vocabulary. */
  readonly trainingTask: { readonly name: string; readonly [key: string]: unknown };
  /** Progress lines for the user. */
  readonly log: (line: string) => void;
}

export interface EvaluationResult {
  /** MLflow metric name → value, e.g. `eval/mqar/L128_K16/accuracy`. */
  readonly metrics: Readonly<Record<string, number>>;
  /** Tags worth recording, e.g. why some lengths were not evaluated. */
  readonly tags?: Readonly<Record<string, string>>;
}

/**
 * An evaluation run after training (an entry of `evals:`) or by `interleave eval --task <name>`.
 * It registers under `name` and validates its own keys (all of its entry but `task`).
 */
export interface EvaluationDefinition<Config = unknown> {
  readonly name: string;
  readonly description: string;
  readonly schema: z.ZodType<Config>;
  run(config: Config, context: EvaluationContext): Promise<EvaluationResult>;
}
