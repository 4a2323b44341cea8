import { SeededRandom, type TaskDefinition, type TokenBatch } from '@interleave/core';
import { z } from 'zod';
import { checkModelVocabulary, MadTask } from './mad-task.js';

/**
 * The fixed key → value map MAD's memorization asks for: keys [0, K) and values [K, V − 1)
 * with K = ⌊(V − 1)/2⌋ (V − 1 is the insert token), each key paired with a distinct value,
 * the pairing a seeded shuffle. It is the same for every example, so it must be learned into
 * the weights; nothing in the sequence reveals it.
 */
export function memorizationMap(vocabSize: number, seed: number): Int32Array {
  const keyCount = Math.floor((vocabSize - 1) / 2);
  const values = Int32Array.from({ length: vocabSize - 1 - keyCount }, (_, index) => keyCount + index);
  const rng = new SeededRandom(seed, 'mad_memorization/map');
  for (let index = values.length - 1; index > 0; index--) {
    const other = rng.int(index + 1);
    const value = values[index] as number;
    values[index] = values[other] as number;
    values[other] = value;
  }
  return values.slice(0, keyCount);
}

/**
 * MAD's memorization (docs/design.md#mad-tasks): seq_len/2 pairs of a uniformly drawn key and
 * the insert token V − 1; at each insert token the model must output the key's value from the
 * fixed map. Those positions are scored, in training and at test alike.
 */
export function writeMemorizationExample(
  rng: SeededRandom,
  valueOfKey: Int32Array,
  insertToken: number,
  batch: TokenBatch,
  row: number,
): void {
  const offset = row * batch.seqLen;
  for (let position = 0; position + 1 < batch.seqLen; position += 2) {
    const key = rng.int(valueOfKey.length);
    batch.inputs[offset + position] = key;
    batch.inputs[offset + position + 1] = insertToken;
    batch.targets[offset + position + 1] = valueOfKey[key] as number;
    batch.mask[offset + position + 1] = 1;
  }
}

/** `mad_memorization`, with MAD's baseline (configs/tasks/memorization.yml). */
export const memorizationSchema = z.strictObject({
  vocab_size: z.number().int().min(4).default(256),
  seq_len: z
    .number()
    .int()
    .min(2)
    .refine((length) => length % 2 === 0, { message: 'seq_len must be even (key, insert-token pairs)' })
    .default(32),
  train_examples: z.number().int().positive().default(256),
  test_examples: z.number().int().positive().default(1_280),
});

export type MemorizationConfig = z.infer<typeof memorizationSchema>;

export const madMemorizationTask: TaskDefinition<MemorizationConfig> = {
  name: 'mad_memorization',
  description: 'MAD memorization: output the value a fixed, learned-in-training map gives each key.',
  schema: memorizationSchema,
  create: (config, context) => {
    checkModelVocabulary('mad_memorization', config.vocab_size, context.vocabSize);
    const valueOfKey = memorizationMap(config.vocab_size, context.seed);
    return new MadTask({
      name: 'mad_memorization',
      description: `mad_memorization seq_len=${config.seq_len} vocab=${config.vocab_size}`,
      seqLen: config.seq_len,
      trainExamples: config.train_examples,
      testExamples: config.test_examples,
      seed: context.seed,
      write: (rng, _split, batch, row) => writeMemorizationExample(rng, valueOfKey, config.vocab_size - 1, batch, row),
    });
  },
};
