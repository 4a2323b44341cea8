import { z } from 'zod';

/**
 * The experiment config (SPEC §3). Block- and task-specific keys are validated later by the
 * schema each block or task registers, so this file never needs to know their names.
 */

export const BACKEND_NAMES = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendRequest = (typeof BACKEND_NAMES)[number];

export const mlpSchema = z.strictObject({
  expansion: z.number().positive().default(4),
  activation: z.enum(['gelu', 'silu']).default('gelu'),
});
export type MlpConfig = z.infer<typeof mlpSchema>;

/** A layer entry before its block's own schema has checked the remaining keys. */
export const layerEntrySchema = z.looseObject({
  block: z.string().min(1),
  mlp: mlpSchema.nullable().optional(),
});
export type LayerEntry = z.infer<typeof layerEntrySchema>;

export interface PatternEntry {
  repeat: number;
  pattern: Array<LayerEntry | PatternEntry>;
}

export const patternEntrySchema: z.ZodType<PatternEntry> = z.lazy(() =>
  z.strictObject({
    repeat: z.number().int().positive(),
    pattern: z.array(z.union([patternEntrySchema, layerEntrySchema])).min(1),
  }),
);

export const modelSchema = z.strictObject({
  vocab_size: z.number().int().min(2),
  d_model: z.number().int().positive(),
  layers: z.array(z.union([patternEntrySchema, layerEntrySchema])).min(1),
  tie_embeddings: z.boolean().default(true),
  norm_eps: z.number().positive().default(1e-5),
  /**
   * Scale each block's output projection with the model's depth as the block's reference
   * implementation does (Mamba: mamba_ssm's `rescale_prenorm_residual`; RG-LRU: recurrentgemma's
   * `final_w_init_variance_scale = 2 / num_layers`). false: every block's depth-independent init.
   * Blocks whose reference does no such scaling ignore it (see each block's README section).
   * Absent = true (left optional so that configs resolved before it existed keep their hash).
   */
  depth_scaled_init: z.boolean().optional(),
  /**
   * Learned absolute position embeddings added to the token embeddings for positions
   * 0 … max_position_embeddings − 1, as Zoology's attention baseline (its
   * `max_position_embeddings`); sequences may not be longer. Absent or 0: none (blocks carry
   * their own positions, e.g. attention's RoPE).
   */
  max_position_embeddings: z.number().int().min(0).optional(),
});

export const taskEntrySchema = z.looseObject({ name: z.string().min(1) });

/** An entry of `evals:`: the evaluation's registered name, then its own keys. */
export const evaluationEntrySchema = z.looseObject({ task: z.string().min(1) });

export const optimizerSchema = z.strictObject({
  name: z.literal('adamw').default('adamw'),
  lr: z.number().positive(),
  weight_decay: z.number().min(0).default(0.1),
  betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]).default([0.9, 0.98]),
  eps: z.number().positive().default(1e-8),
});

export const scheduleSchema = z.strictObject({
  warmup_steps: z.number().int().min(0).default(0),
  decay: z.enum(['cosine', 'constant', 'linear']).default('cosine'),
  /** The learning rate at the end of the decay, as a fraction of `lr`. */
  min_lr_ratio: z.number().min(0).max(1).default(0.1),
});

export const trainSchema = z.strictObject({
  steps: z.number().int().positive(),
  batch_size: z.number().int().positive(),
  optimizer: optimizerSchema,
  schedule: scheduleSchema.default({ warmup_steps: 0, decay: 'cosine', min_lr_ratio: 0.1 }),
  /** Clip the global gradient norm to this value; `null` turns clipping off. */
  grad_clip: z.number().positive().nullable().default(1.0),
  eval_every: z.number().int().positive().nullable().default(null),
  checkpoint_every: z.number().int().positive().nullable().default(null),
  log_every: z.number().int().positive().default(10),
});

export const trackingSchema = z.strictObject({
  uri: z.string().min(1).default('./mlruns'),
  experiment: z.string().min(1).default('Default'),
  run_name: z.string().min(1).optional(),
});

export const SWEEP_METHODS = ['grid', 'random', 'zip'] as const;

const range = (kind: string) =>
  z
    .tuple([z.number(), z.number()])
    .refine(([low, high]) => low < high, { message: `a ${kind} range is [low, high] with low < high` });

/** What `method: random` draws a parameter from, besides a plain list (a uniform choice). */
export const sweepDistributionSchema = z.union([
  z.strictObject({ uniform: range('uniform') }),
  z.strictObject({
    log_uniform: range('log_uniform').refine(([low]) => low > 0, {
      message: 'a log_uniform range must be positive: [low, high] with 0 < low < high',
    }),
  }),
  z.strictObject({ choice: z.array(z.unknown()).min(1) }),
]);
export type SweepDistribution = z.infer<typeof sweepDistributionSchema>;

/**
 * `sweep:` turns a config into a sweep: each parameter is a dotted key path into the config
 * and either a list of values (every method) or, for `random`, a distribution to draw from.
 */
export const sweepSchema = z
  .strictObject({
    method: z.enum(SWEEP_METHODS).default('grid'),
    /** How many configs `random` draws. */
    trials: z.number().int().positive().optional(),
    /** Seeds `random`'s draws (not the models: that is the top-level `seed`). */
    seed: z.number().int().min(0).default(0),
    parameters: z.record(z.string().min(1), z.union([z.array(z.unknown()).min(1), sweepDistributionSchema])),
  })
  .superRefine((sweep, ctx) => {
    const entries = Object.entries(sweep.parameters);
    if (entries.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['parameters'], message: 'a sweep needs at least one parameter' });
    }
    if (sweep.method === 'random' && sweep.trials === undefined) {
      ctx.addIssue({ code: 'custom', path: ['trials'], message: "method 'random' needs 'trials' (how many to draw)" });
    }
    if (sweep.method !== 'random' && sweep.trials !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['trials'],
        message: `'trials' is for method 'random'; method '${sweep.method}' runs every listed value`,
      });
    }
    if (sweep.method !== 'random') {
      for (const [key, values] of entries) {
        if (Array.isArray(values)) continue;
        ctx.addIssue({
          code: 'custom',
          path: ['parameters', key],
          message: `method '${sweep.method}' takes a list of values; distributions (uniform, log_uniform, choice) need method 'random'`,
        });
      }
    }
    const lists = entries.filter((entry): entry is [string, unknown[]] => Array.isArray(entry[1]));
    const sizes = new Set(lists.map(([, values]) => values.length));
    if (sweep.method === 'zip' && sizes.size > 1) {
      const lengths = lists.map(([key, values]) => `${key} has ${values.length}`);
      ctx.addIssue({
        code: 'custom',
        path: ['parameters'],
        message: `method 'zip' needs lists of equal length (${lengths.join(', ')})`,
      });
    }
  });
export type SweepConfig = z.infer<typeof sweepSchema>;

export const experimentSchema = z.strictObject({
  name: z.string().min(1),
  seed: z.number().int().min(0).default(0),
  backend: z.enum(BACKEND_NAMES).default('auto'),
  model: modelSchema,
  task: taskEntrySchema,
  train: trainSchema,
  tracking: trackingSchema.default({ uri: './mlruns', experiment: 'Default' }),
  plugins: z.array(z.string().min(1)).default([]),
  /** Evaluations run after training, logged to the same run. */
  evals: z.array(evaluationEntrySchema).default([]),
  /** `null` marks a config made from a sweep's trial: a plain training config again. */
  sweep: sweepSchema.nullable().optional(),
});

export type ExperimentConfig = z.infer<typeof experimentSchema>;
export type ModelConfig = ExperimentConfig['model'];
export type TrainConfig = ExperimentConfig['train'];
export type TrackingConfig = ExperimentConfig['tracking'];
