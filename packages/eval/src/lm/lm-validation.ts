import type { EvaluationDefinition, NamedRegistry } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { languageModelMetrics } from './lm-metrics.js';
import { lmSchema, lmTask } from './lm-task.js';
import type { TokenizerDefinition } from './tokenizers.js';

export const lmValidationSchema = z.strictObject({
  batch_size: z.number().int().positive().default(8),
});

/**
 * `lm_validation`: the training task's validation loss, perplexity and bits per byte (an `lm`
 * run's `task:` entry says which corpus, split and tokenizer), for `interleave eval`.
 */
export function lmValidationEvaluation(
  tokenizers: NamedRegistry<TokenizerDefinition>,
): EvaluationDefinition<z.infer<typeof lmValidationSchema>> {
  return {
    name: 'lm_validation',
    description: "Validation loss, perplexity and bits per byte of an lm run's held-out text.",
    schema: lmValidationSchema,
    async run(config, { model, seed, trainingTask, log }) {
      const { name: _name, ...keys } = trainingTask;
      const task = lmTask(tokenizers).create(lmSchema.parse(keys), { vocabSize: model.config.vocab_size, seed });
      let totalNats = 0;
      let tokens = 0;
      for (const batch of task.testBatches(config.batch_size)) {
        const nats = tf.tidy(() => {
          const shape: [number, number] = [batch.batchSize, batch.seqLen];
          const logits = model.forward(tf.tensor2d(batch.inputs, shape, 'int32'));
          const vocab = logits.shape[2];
          const logProbabilities = tf.logSoftmax(logits.reshape([-1, vocab])).reshape([-1]);
          // Each position's target, picked from the flat [tokens × vocab] log-probabilities: no
          // [tokens, vocab] one-hot (50257 wide for gpt2).
          const picks = new Int32Array(batch.targets.length);
          for (let index = 0; index < picks.length; index++)
            picks[index] = index * vocab + (batch.targets[index] as number);
          const targets = tf.tensor1d(picks, 'int32');
          return tf.gather(logProbabilities, targets).sum().neg();
        });
        totalNats += (await nats.data())[0] as number;
        nats.dispose();
        tokens += batch.batchSize * batch.seqLen;
      }
      const metrics = languageModelMetrics(totalNats, tokens, task.evaluationBytes ?? tokens);
      log(
        `lm_validation: loss ${metrics.loss.toFixed(4)}, perplexity ${metrics.perplexity.toFixed(2)}, ` +
          `${metrics.bitsPerByte.toFixed(4)} bits/byte over ${tokens} tokens`,
      );
      return {
        metrics: {
          'eval/lm/loss': metrics.loss,
          'eval/lm/perplexity': metrics.perplexity,
          'eval/lm/bits_per_byte': metrics.bitsPerByte,
        },
      };
    },
  };
}
