import { z } from 'zod';

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
