import type { EvaluationDefinition } from '@interleave/core';
import { z } from 'zod';
import { MqarTask, mqarSchema } from '../tasks/mqar.js';
import { maskedAccuracyByForward } from './model-predictions.js';
import { wilsonInterval } from './wilson-interval.js';

/**
 * MQAR accuracy over a grid of (seq_len, num_kv_pairs) (docs/design.md#evaluations), on test sets drawn from the
 * test stream of the run's seed. Cells that MQAR cannot generate (seq_len < 4·K, or K larger
 * than the vocabulary allows) are reported and skipped.
 */
export const mqarGridSchema = z.strictObject({
  seq_len: z.array(z.number().int().positive()).min(1),
  num_kv_pairs: z.array(z.number().int().positive()).min(1),
  examples: z.number().int().positive().default(256),
  batch_size: z.number().int().positive().default(64),
  /** Default: the training task's `test_power_a` when it is MQAR, else MQAR's default. */
  test_power_a: z.number().positive().optional(),
  random_non_queries: z.boolean().optional(),
});

export type MqarGridConfig = z.infer<typeof mqarGridSchema>;

export const mqarGridEvaluation: EvaluationDefinition<MqarGridConfig> = {
  name: 'mqar_grid',
  description: 'MQAR accuracy per (seq_len, num_kv_pairs).',
  schema: mqarGridSchema,
  async run(config, { model, seed, trainingTask, log }) {
    const trained: Record<string, unknown> = trainingTask.name === 'mqar' ? trainingTask : {};
    const metrics: Record<string, number> = {};
    const skipped: string[] = [];
    for (const seqLen of config.seq_len) {
      for (const pairs of config.num_kv_pairs) {
        const cell = mqarSchema.safeParse({
          seq_len: seqLen,
          num_kv_pairs: pairs,
          test_examples: config.examples,
          test_power_a: config.test_power_a ?? trained.test_power_a,
          random_non_queries: config.random_non_queries ?? trained.random_non_queries,
        });
        const name = `L${seqLen}_K${pairs}`;
        if (!cell.success) {
          skipped.push(`${name} (${cell.error.issues[0]?.message})`);
          continue;
        }
        let task: MqarTask;
        try {
          task = new MqarTask(cell.data, { vocabSize: model.config.vocab_size, seed });
        } catch (error) {
          skipped.push(`${name} (${error instanceof Error ? error.message : String(error)})`);
          continue;
        }
        let correct = 0;
        let counted = 0;
        for (const batch of task.testBatches(config.batch_size)) {
          const result = await maskedAccuracyByForward(model, batch);
          correct += result.correct;
          counted += result.counted;
        }
        metrics[`eval/mqar/${name}/accuracy`] = correct / counted;
        // Queries are not independent within an example; the interval over queries is a lower bound on the error.
        const interval = wilsonInterval(correct, counted);
        metrics[`eval/mqar/${name}/accuracy_ci_low`] = interval.low;
        metrics[`eval/mqar/${name}/accuracy_ci_high`] = interval.high;
        log(`mqar seq_len=${seqLen} kv_pairs=${pairs}: accuracy ${(correct / counted).toFixed(4)}`);
      }
    }
    for (const reason of skipped) log(`mqar ${reason}: skipped`);
    return { metrics, ...(skipped.length > 0 ? { tags: { 'interleave.eval.mqar_skipped': skipped.join('; ') } } : {}) };
  },
};
