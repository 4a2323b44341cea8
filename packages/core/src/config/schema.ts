import { z } from 'zod';

/**
 * Core's sections of the experiment config (docs/design.md#config). Block- and
 * task-specific keys are validated later by the schema each block or task registers, so this
 * file never needs to know their names; train's sections (train, tracking, sweep) live in
 * @interleave/train.
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

/**
 * The sections of the experiment file that core reads: the run's name and seed, the backend,
 * the model, the task entry, plugins and evaluation entries. The package that runs
 * experiments composes the whole file's schema from these and its own sections (train's
 * `experimentSchema`), and core's `loadConfig` validates the file against that schema.
 */
export const coreConfigSections = {
  name: z.string().min(1),
  seed: z.number().int().min(0).default(0),
  backend: z.enum(BACKEND_NAMES).default('auto'),
  model: modelSchema,
  task: taskEntrySchema,
  plugins: z.array(z.string().min(1)).default([]),
  /** Evaluations run after training, logged to the same run. */
  evals: z.array(evaluationEntrySchema).default([]),
};

const coreConfigSchema = z.object(coreConfigSections);
/** What core needs of a validated config; an experiment config has more sections. */
export type CoreConfig = z.infer<typeof coreConfigSchema>;
export type ModelConfig = CoreConfig['model'];
