import type { SeededRandom, TaskDefinition } from '@interleave/core';
import { z } from 'zod';
import { type RecallSequence, UNSCORED, writeRecallSequence } from './in-context-recall.js';
import { checkModelVocabulary, drawBetween, type MadSplit, MadTask, madSetSizes } from './mad-task.js';

export interface FuzzyRecallLayout {
  vocabSize: number;
  seqLen: number;
  /** Keys are 1 … keyMotifSize distinct key tokens in training, exactly keyMotifSize at test. */
  keyMotifSize: number;
  /** Values are 1 … valueMotifSize distinct value tokens. */
  valueMotifSize: number;
}

/**
 * MAD's fuzzy in-context recall, multi-query form (docs/design.md#mad-tasks). The last token,
 * vocab_size − 1, pads; keys are motifs of distinct tokens from [0, P/2) and values motifs of
 * distinct tokens from [P/2, P), P = vocab_size − 1, each motif size drawn uniformly (keys
 * always of the largest size at test). A probe pair is placed at a random point of the stream
 * of pairs (always inside it, unlike MAD; see below); any key equal to the probe's key carries
 * the probe's value. Pairs are appended
 * while the stream is shorter than seq_len − |probe| − (max key + max value size), then the
 * probe pair ends the sequence, and the front is padded so that the sequence has seq_len + 1
 * tokens. At test every value token of a repeated key is scored, the final probe's included.
 */
export function generateFuzzyRecallSequence(
  rng: SeededRandom,
  split: MadSplit,
  layout: FuzzyRecallLayout,
): RecallSequence {
  const { vocabSize, seqLen, keyMotifSize, valueMotifSize } = layout;
  const padToken = vocabSize - 1;
  const keyCount = Math.floor(padToken / 2);
  const keySize = () => (split === 'test' ? keyMotifSize : 1 + rng.int(keyMotifSize));
  const drawKey = (size: number) => drawMotif(rng, 0, keyCount, size);
  const drawValue = () => drawMotif(rng, keyCount, padToken, 1 + rng.int(valueMotifSize));

  const probeKey = drawKey(keySize());
  const probeValue = drawValue();
  const probeLength = probeKey.length + probeValue.length;
  const longestPair = keyMotifSize + valueMotifSize;
  const fillLimit = seqLen - probeLength - longestPair;
  // MAD draws the probe's place from [0, seq_len − 2·|probe|), which can lie past the end of the
  // fill, and then the final query asks for a key never shown. Drawing it at most one longest
  // pair before the end of the fill guarantees some pair starts in [probeAt, fillLimit).
  const probeAt = rng.int(fillLimit - longestPair + 1);

  const stream: number[] = [];
  const scored: number[] = [];
  const valueOfKey = new Map<string, number[]>([[probeKey.join(','), probeValue]]);
  const presented = new Set<string>();
  const append = (key: number[], value: number[], scoreValue: boolean) => {
    for (const token of key) {
      stream.push(token);
      scored.push(UNSCORED);
    }
    for (const token of value) {
      stream.push(token);
      scored.push(scoreValue ? token : UNSCORED);
    }
  };
  let probePlaced = false;
  while (stream.length < fillLimit) {
    if (!probePlaced && stream.length >= probeAt) {
      append(probeKey, probeValue, false);
      presented.add(probeKey.join(','));
      probePlaced = true;
      continue;
    }
    const key = drawKey(keySize());
    const name = key.join(',');
    let value = valueOfKey.get(name);
    if (value === undefined) {
      value = drawValue();
      valueOfKey.set(name, value);
    }
    append(key, value, presented.has(name));
    presented.add(name);
  }
  append(probeKey, probeValue, true);

  const tokens = new Int32Array(seqLen + 1).fill(padToken);
  const testTargets = new Int32Array(seqLen + 1).fill(UNSCORED);
  const padding = seqLen + 1 - stream.length;
  tokens.set(stream, padding);
  testTargets.set(scored, padding);
  return { tokens, testTargets };
}

/** `size` distinct tokens from [low, high), in random order. */
function drawMotif(rng: SeededRandom, low: number, high: number, size: number): number[] {
  const motif: number[] = [];
  while (motif.length < size) {
    const token = drawBetween(rng, low, high);
    if (!motif.includes(token)) motif.push(token);
  }
  return motif;
}

/** `mad_fuzzy_recall`, with MAD's baseline (configs/tasks/fuzzy-in-context-recall.yml). */
export const fuzzyRecallSchema = z
  .strictObject({
    vocab_size: z.number().int().min(5).default(16),
    /** The model sees seq_len positions (MAD pads the front to seq_len + 1 tokens and shifts). */
    seq_len: z.number().int().positive().default(128),
    k_motif_size: z.number().int().min(1).default(3),
    v_motif_size: z.number().int().min(1).default(3),
    ...madSetSizes,
  })
  .superRefine((config, context) => {
    const keyTokens = Math.floor((config.vocab_size - 1) / 2);
    const valueTokens = config.vocab_size - 1 - keyTokens;
    if (config.k_motif_size > keyTokens || config.v_motif_size > valueTokens) {
      context.addIssue({
        code: 'custom',
        path: ['k_motif_size'],
        message: `motifs are distinct tokens: vocab_size=${config.vocab_size} has ${keyTokens} key and ${valueTokens} value tokens, fewer than k_motif_size=${config.k_motif_size} or v_motif_size=${config.v_motif_size}`,
      });
    }
    const longestPair = config.k_motif_size + config.v_motif_size;
    if (config.seq_len < 3 * longestPair) {
      context.addIssue({
        code: 'custom',
        path: ['seq_len'],
        message: `seq_len must be at least 3 × (k_motif_size + v_motif_size) = ${3 * longestPair}, room for the probe and one pair`,
      });
    }
  });

export type FuzzyRecallConfig = z.infer<typeof fuzzyRecallSchema>;

export const madFuzzyRecallTask: TaskDefinition<FuzzyRecallConfig> = {
  name: 'mad_fuzzy_recall',
  description: 'MAD fuzzy in-context recall: keys and values are motifs of several tokens; recall repeated keys.',
  schema: fuzzyRecallSchema,
  create: (config, context) => {
    checkModelVocabulary('mad_fuzzy_recall', config.vocab_size, context.vocabSize);
    const layout: FuzzyRecallLayout = {
      vocabSize: config.vocab_size,
      seqLen: config.seq_len,
      keyMotifSize: config.k_motif_size,
      valueMotifSize: config.v_motif_size,
    };
    return new MadTask({
      name: 'mad_fuzzy_recall',
      description: `mad_fuzzy_recall seq_len=${config.seq_len} vocab=${config.vocab_size} motifs=${config.k_motif_size}/${config.v_motif_size}`,
      seqLen: config.seq_len,
      trainExamples: config.train_examples,
      testExamples: config.test_examples,
      seed: context.seed,
      write: (rng, split, batch, row) =>
        writeRecallSequence(generateFuzzyRecallSequence(rng, split, layout), split, batch, row),
    });
  },
};
