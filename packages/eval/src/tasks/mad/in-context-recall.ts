import type { SeededRandom, TaskDefinition, TokenBatch } from '@interleave/core';
import { z } from 'zod';
import { checkModelVocabulary, drawBetween, type MadSplit, MadTask, madSetSizes, writeShifted } from './mad-task.js';

/** A position whose target is not scored at test. */
export const UNSCORED = -1;

export interface RecallLayout {
  vocabSize: number;
  seqLen: number;
  /** The top `noiseVocabSize` tokens are noise; keys and values split the rest in half. */
  noiseVocabSize: number;
  /** Probability that a pair slot holds two noise tokens instead of a key and its value. */
  fracNoise: number;
}

/** A generated sequence and, per token, the value a test scores there (or UNSCORED). */
export interface RecallSequence {
  tokens: Int32Array;
  testTargets: Int32Array;
}

/**
 * MAD's in-context recall, multi-query form (docs/design.md#mad-tasks): seq_len/2 slots of two
 * tokens. Keys are [0, S/2) and values [S/2, S) with S = vocab_size − noise_vocab_size; noise
 * tokens are [S, vocab_size). Each of the first seq_len/2 − 1 slots is, with probability
 * frac_noise, two noise tokens; otherwise a key drawn uniformly (repeats allowed) followed by its
 * value, which is drawn uniformly the first time the key appears and fixed from then on. One
 * slot is never noise, so some key is always presented. The last slot repeats a presented key
 * and its value. At test, a value is scored wherever its key was presented earlier (every repeat
 * is a query), the last slot included.
 */
export function generateRecallSequence(rng: SeededRandom, layout: RecallLayout): RecallSequence {
  const { vocabSize, seqLen, noiseVocabSize, fracNoise } = layout;
  const contentTokens = vocabSize - noiseVocabSize;
  const keyCount = Math.floor(contentTokens / 2);
  const slots = seqLen / 2;
  const tokens = new Int32Array(seqLen);
  const testTargets = new Int32Array(seqLen).fill(UNSCORED);
  const valueOfKey = new Int32Array(keyCount).fill(-1);
  const presented: number[] = [];
  const guaranteedPair = rng.int(slots - 1);
  for (let slot = 0; slot < slots - 1; slot++) {
    const at = 2 * slot;
    if (slot !== guaranteedPair && fracNoise > 0 && rng.next() < fracNoise) {
      tokens[at] = drawBetween(rng, contentTokens, vocabSize);
      tokens[at + 1] = drawBetween(rng, contentTokens, vocabSize);
      continue;
    }
    const key = rng.int(keyCount);
    if (valueOfKey[key] === -1) {
      valueOfKey[key] = drawBetween(rng, keyCount, contentTokens);
      presented.push(key);
    } else {
      testTargets[at + 1] = valueOfKey[key] as number;
    }
    tokens[at] = key;
    tokens[at + 1] = valueOfKey[key] as number;
  }
  const probe = presented[rng.int(presented.length)] as number;
  tokens[seqLen - 2] = probe;
  tokens[seqLen - 1] = valueOfKey[probe] as number;
  testTargets[seqLen - 1] = valueOfKey[probe] as number;
  return { tokens, testTargets };
}

/**
 * Writes a recall sequence as MAD does: the model sees tokens[0 .. n−2]; training scores every
 * next token, the test only the values of repeated keys.
 */
export function writeRecallSequence(sequence: RecallSequence, split: MadSplit, batch: TokenBatch, row: number): void {
  if (split === 'train') {
    writeShifted(sequence.tokens, batch, row);
    return;
  }
  const offset = row * batch.seqLen;
  for (let position = 0; position < batch.seqLen; position++) {
    const target = sequence.testTargets[position + 1] as number;
    batch.inputs[offset + position] = sequence.tokens[position] as number;
    batch.targets[offset + position] = target === UNSCORED ? 0 : target;
    batch.mask[offset + position] = target === UNSCORED ? 0 : 1;
  }
}

const recallKeys = {
  /** Every token of the sequence, noise included; model.vocab_size must be at least this. */
  vocab_size: z.number().int().min(4),
  /** Tokens in the whole sequence; the model sees seq_len − 1 positions (MAD's inputs[:-1]). */
  seq_len: z
    .number()
    .int()
    .min(4)
    .refine((length) => length % 2 === 0, { message: 'seq_len must be even (key-value slots of two tokens)' }),
  ...madSetSizes,
};

function noiseBelowVocabulary<Config extends { vocab_size: number; noise_vocab_size: number }>(
  config: Config,
  context: z.RefinementCtx,
): void {
  if (config.vocab_size - config.noise_vocab_size < 2) {
    context.addIssue({
      code: 'custom',
      path: ['noise_vocab_size'],
      message: `noise_vocab_size must leave at least one key and one value: vocab_size − noise_vocab_size = ${config.vocab_size - config.noise_vocab_size}`,
    });
  }
}

/** `mad_in_context_recall`, with MAD's baseline (configs/tasks/in-context-recall.yml). */
export const inContextRecallSchema = z.strictObject({
  ...recallKeys,
  vocab_size: recallKeys.vocab_size.default(16),
  seq_len: recallKeys.seq_len.default(128),
});

/** `mad_noisy_recall`, with MAD's baseline (configs/tasks/noisy-in-context-recall.yml). */
export const noisyRecallSchema = z
  .strictObject({
    ...recallKeys,
    vocab_size: recallKeys.vocab_size.default(32),
    seq_len: recallKeys.seq_len.default(128),
    noise_vocab_size: z.number().int().min(1).default(16),
    frac_noise: z.number().min(0).lt(1).default(0.2),
  })
  .superRefine(noiseBelowVocabulary);

export type InContextRecallConfig = z.infer<typeof inContextRecallSchema>;
export type NoisyRecallConfig = z.infer<typeof noisyRecallSchema>;

function recallTask(
  name: string,
  layout: RecallLayout,
  sizes: { train_examples: number; test_examples: number },
  seed: number,
) {
  return new MadTask({
    name,
    description: `${name} seq_len=${layout.seqLen} vocab=${layout.vocabSize}${layout.fracNoise > 0 ? ` noise=${layout.fracNoise}` : ''}`,
    seqLen: layout.seqLen - 1,
    trainExamples: sizes.train_examples,
    testExamples: sizes.test_examples,
    seed,
    write: (rng, split, batch, row) => writeRecallSequence(generateRecallSequence(rng, layout), split, batch, row),
  });
}

export const madInContextRecallTask: TaskDefinition<InContextRecallConfig> = {
  name: 'mad_in_context_recall',
  description: 'MAD in-context recall: key-value pairs with repeats; recall the value of every repeated key.',
  schema: inContextRecallSchema,
  create: (config, context) => {
    checkModelVocabulary('mad_in_context_recall', config.vocab_size, context.vocabSize);
    const layout = { vocabSize: config.vocab_size, seqLen: config.seq_len, noiseVocabSize: 0, fracNoise: 0 };
    return recallTask('mad_in_context_recall', layout, config, context.seed);
  },
};

export const madNoisyRecallTask: TaskDefinition<NoisyRecallConfig> = {
  name: 'mad_noisy_recall',
  description: 'MAD noisy in-context recall: in-context recall with pairs of noise tokens between the pairs.',
  schema: noisyRecallSchema,
  create: (config, context) => {
    checkModelVocabulary('mad_noisy_recall', config.vocab_size, context.vocabSize);
    const layout = {
      vocabSize: config.vocab_size,
      seqLen: config.seq_len,
      noiseVocabSize: config.noise_vocab_size,
      fracNoise: config.frac_noise,
    };
    return recallTask('mad_noisy_recall', layout, config, context.seed);
  },
};
