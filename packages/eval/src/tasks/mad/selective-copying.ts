import type { SeededRandom, TaskDefinition, TokenBatch } from '@interleave/core';
import { z } from 'zod';
import { checkModelVocabulary, MadTask, madSetSizes } from './mad-task.js';

export interface SelectiveCopyingLayout {
  vocabSize: number;
  seqLen: number;
  tokensToCopy: number;
}

/**
 * MAD's selective copying (docs/design.md#mad-tasks): vocab_size − 1 is the copy token,
 * vocab_size − 2 the blank, the rest content. N content tokens (uniform, repeats allowed) are
 * scattered among seq_len − 2N − 1 blanks — each blank goes into one of the N gaps before a
 * content token, uniformly, so the last content token is always directly followed by the copy
 * token — then come the copy token and N blanks, at which the model must emit the content
 * tokens in order. Only those N positions are scored, in training and at test alike.
 */
export function writeSelectiveCopyingExample(
  rng: SeededRandom,
  layout: SelectiveCopyingLayout,
  batch: TokenBatch,
  row: number,
): void {
  const { vocabSize, seqLen, tokensToCopy } = layout;
  const copyToken = vocabSize - 1;
  const blank = vocabSize - 2;
  const blanks = seqLen - 2 * tokensToCopy - 1;
  const blanksBefore = new Int32Array(tokensToCopy);
  for (let index = 0; index < blanks; index++) {
    const gap = rng.int(tokensToCopy);
    blanksBefore[gap] = (blanksBefore[gap] as number) + 1;
  }
  const offset = row * seqLen;
  let position = 0;
  const content: number[] = [];
  for (let index = 0; index < tokensToCopy; index++) {
    for (let count = 0; count < (blanksBefore[index] as number); count++) batch.inputs[offset + position++] = blank;
    const token = rng.int(blank);
    content.push(token);
    batch.inputs[offset + position++] = token;
  }
  batch.inputs[offset + position++] = copyToken;
  for (const token of content) {
    batch.inputs[offset + position] = blank;
    batch.targets[offset + position] = token;
    batch.mask[offset + position] = 1;
    position++;
  }
}

/** `mad_selective_copying`, with MAD's baseline (configs/tasks/selective-copying.yml). */
export const selectiveCopyingSchema = z
  .strictObject({
    vocab_size: z.number().int().min(3).default(16),
    seq_len: z.number().int().positive().default(256),
    num_tokens_to_copy: z.number().int().positive().default(16),
    ...madSetSizes,
  })
  .superRefine((config, context) => {
    if (config.seq_len <= 2 * config.num_tokens_to_copy + 1) {
      context.addIssue({
        code: 'custom',
        path: ['seq_len'],
        message: `seq_len must exceed 2 × num_tokens_to_copy + 1 = ${2 * config.num_tokens_to_copy + 1} (as in MAD)`,
      });
    }
  });

export type SelectiveCopyingConfig = z.infer<typeof selectiveCopyingSchema>;

export const madSelectiveCopyingTask: TaskDefinition<SelectiveCopyingConfig> = {
  name: 'mad_selective_copying',
  description:
    'MAD selective copying: after the copy token, output the content tokens scattered among blanks, in order.',
  schema: selectiveCopyingSchema,
  create: (config, context) => {
    checkModelVocabulary('mad_selective_copying', config.vocab_size, context.vocabSize);
    const layout = { vocabSize: config.vocab_size, seqLen: config.seq_len, tokensToCopy: config.num_tokens_to_copy };
    return new MadTask({
      name: 'mad_selective_copying',
      description: `mad_selective_copying seq_len=${config.seq_len} vocab=${config.vocab_size} copy=${config.num_tokens_to_copy}`,
      seqLen: config.seq_len,
      trainExamples: config.train_examples,
      testExamples: config.test_examples,
      seed: context.seed,
      write: (rng, _split, batch, row) => writeSelectiveCopyingExample(rng, layout, batch, row),
    });
  },
};
