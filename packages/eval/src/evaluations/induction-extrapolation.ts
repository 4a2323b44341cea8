import type { EvaluationDefinition } from '@interleave/core';
import { z } from 'zod';
import { inductionTestBatchStream } from '../tasks/induction-heads.js';
import { lastPredictionsByStep } from './model-predictions.js';
import { StepModeReplay } from './step-mode-replay.js';
import { wilsonInterval } from './wilson-interval.js';

/**
 * Induction-heads accuracy at lengths far beyond training (docs/design.md#evaluations), every model in its
 * recurrent form: one `step` per token. A model whose state grows with the sequence (full
 * attention, Hyena) is evaluated only up to `max_growing_state_length`, since its cost per token
 * grows too; the lengths left out are recorded in a tag.
 */
export const inductionExtrapolationSchema = z.strictObject({
  lengths: z.array(z.number().int().min(4)).min(1).default([64, 128, 256, 512, 1024, 2048, 4096]),
  examples: z.number().int().positive().default(64),
  batch_size: z.number().int().positive().default(64),
  /** Default: the training task's `vocab` when it is induction_heads, else 16. */
  vocab: z.number().int().min(3).optional(),
  max_growing_state_length: z.number().int().positive().default(4096),
  /**
   * On webgpu, replay the per-token step once two recorded steps agree (step-mode-replay.ts): the
   * same kernels on the same data without tfjs's per-op CPU cost. `off` steps through tfjs.
   */
  step_replay: z.enum(['auto', 'off']).default('auto'),
});

export type InductionExtrapolationConfig = z.infer<typeof inductionExtrapolationSchema>;

export const inductionExtrapolationEvaluation: EvaluationDefinition<InductionExtrapolationConfig> = {
  name: 'induction_extrapolation',
  description: 'Induction-heads accuracy vs. sequence length, evaluated token by token in step mode.',
  schema: inductionExtrapolationSchema,
  async run(config, { model, seed, trainingTask, log }) {
    const trainedVocab = trainingTask.name === 'induction_heads' ? trainingTask.vocab : undefined;
    const vocab = config.vocab ?? (typeof trainedVocab === 'number' ? trainedVocab : 16);
    const metrics: Record<string, number> = {};
    const lengths = [...config.lengths].sort((a, b) => a - b);
    let firstStateBytes: number | undefined;
    let growing = false;
    const leftOut: number[] = [];
    const replay = new StepModeReplay(config.step_replay);
    for (const length of lengths) {
      if (growing && length > config.max_growing_state_length) {
        leftOut.push(length);
        continue;
      }
      const started = performance.now();
      let correct = 0;
      let counted = 0;
      let bytes = 0;
      for (const batch of inductionTestBatchStream(seed, vocab, length, config.examples, config.batch_size)) {
        const { predictions, stateBytes } = await lastPredictionsByStep(model, batch, replay);
        bytes = Math.max(bytes, stateBytes / batch.batchSize);
        for (let row = 0; row < batch.batchSize; row++) {
          counted++;
          if (predictions[row] === batch.targets[row * length + length - 1]) correct++;
        }
      }
      firstStateBytes ??= bytes;
      growing ||= bytes > firstStateBytes;
      const interval = wilsonInterval(correct, counted);
      metrics[`eval/induction/len_${length}/accuracy`] = correct / counted;
      // 95% Wilson interval and the count behind it: 64 examples give ±6 points, 1000 about ±1.5.
      metrics[`eval/induction/len_${length}/accuracy_ci_low`] = interval.low;
      metrics[`eval/induction/len_${length}/accuracy_ci_high`] = interval.high;
      metrics[`eval/induction/len_${length}/examples`] = counted;
      metrics[`eval/induction/len_${length}/state_bytes_per_sequence`] = bytes;
      const seconds = (performance.now() - started) / 1000;
      log(
        `induction heads length ${length}: accuracy ${(correct / counted).toFixed(4)} ` +
          `(95% CI ${interval.low.toFixed(3)}–${interval.high.toFixed(3)}, ${counted} examples) ` +
          `(state ${(bytes / 1024).toFixed(1)} KiB/sequence, ${seconds.toFixed(1)}s; step replay: ${replay.status})`,
      );
    }
    if (leftOut.length > 0) {
      log(
        `induction heads: the state grows with length, so lengths ${leftOut.join(', ')} were not evaluated (max_growing_state_length ${config.max_growing_state_length})`,
      );
    }
    return {
      metrics,
      ...(leftOut.length > 0 ? { tags: { 'interleave.eval.induction_not_evaluated': leftOut.join(',') } } : {}),
    };
  },
};
