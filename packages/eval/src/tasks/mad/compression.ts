import type { SeededRandom, TaskDefinition, TokenBatch } from '@interleave/core';
import { z } from 'zod';
import { checkModelVocabulary, MadTask, madSetSizes } from './mad-task.js';

/**
 * MAD's compression in language-model form (docs/design.md#mad-tasks). MAD draws seq_len − 1
 * content tokens from [0, vocab_size − 1), ends them with the compression token vocab_size − 1,
 * and trains an autoencoder whose decoder sees only the encoder's output at that last position.
 * Interleave's models are causal language models, so the same sequence is followed by
 * seq_len − 1 more compression tokens, at which the model must reproduce the content in order:
 * everything it needs has to pass through the position of the first compression token for a
 * recurrent model, as in MAD; attention can still look back, which MAD's bottleneck forbids.
 * The model sees 2·(seq_len − 1) positions; the seq_len − 1 reconstructions are scored.
 */
export function writeCompressionExample(
  rng: SeededRandom,
  vocabSize: number,
  contentLength: number,
  batch: TokenBatch,
  row: number,
): void {
  const compressionToken = vocabSize - 1;
  const offset = row * batch.seqLen;
  for (let index = 0; index < contentLength; index++) {
    const token = rng.int(compressionToken);
    batch.inputs[offset + index] = token;
    const reconstruction = offset + contentLength + index;
    batch.targets[reconstruction] = token;
    batch.mask[reconstruction] = 1;
  }
  for (let position = contentLength; position < batch.seqLen; position++) {
    batch.inputs[offset + position] = compressionToken;
  }
}

/** `mad_compression`, with MAD's baseline (configs/tasks/compression.yml). */
export const compressionSchema = z.strictObject({
  vocab_size: z.number().int().min(2).default(16),
  /** MAD's sequence: seq_len − 1 content tokens and the compression token. */
  seq_len: z.number().int().min(2).default(32),
  ...madSetSizes,
});

export type CompressionConfig = z.infer<typeof compressionSchema>;

export const madCompressionTask: TaskDefinition<CompressionConfig> = {
  name: 'mad_compression',
  description: 'MAD compression: after the compression token, reproduce every content token before it, in order.',
  schema: compressionSchema,
  create: (config, context) => {
    checkModelVocabulary('mad_compression', config.vocab_size, context.vocabSize);
    const contentLength = config.seq_len - 1;
    return new MadTask({
      name: 'mad_compression',
      description: `mad_compression seq_len=${config.seq_len} vocab=${config.vocab_size}`,
      seqLen: 2 * contentLength,
      trainExamples: config.train_examples,
      testExamples: config.test_examples,
      seed: context.seed,
      write: (rng, _split, batch, row) => writeCompressionExample(rng, config.vocab_size, contentLength, batch, row),
    });
  },
};
