import {
  applyPlugin,
  createContainer,
  InterleaveError,
  SeededRandom,
  type TaskRegistry,
  TOKENS,
  type TokenBatch,
} from '@interleave/core';
import { describe, expect, it } from 'vitest';
import {
  compressionSchema,
  fuzzyRecallSchema,
  generateFuzzyRecallSequence,
  generateRecallSequence,
  inContextRecallSchema,
  madCompressionTask,
  madFuzzyRecallTask,
  madInContextRecallTask,
  madMemorizationTask,
  madNoisyRecallTask,
  madSelectiveCopyingTask,
  memorizationMap,
  memorizationSchema,
  noisyRecallSchema,
  registerBuiltinTasks,
  selectiveCopyingSchema,
  UNSCORED,
} from '../src/index.js';

function rowOf(batch: TokenBatch, index: number) {
  const span = <T extends Int32Array | Float32Array>(array: T) =>
    array.subarray(index * batch.seqLen, (index + 1) * batch.seqLen) as T;
  return { inputs: span(batch.inputs), targets: span(batch.targets), mask: span(batch.mask) };
}

function* rows(batches: TokenBatch[]) {
  for (const batch of batches) for (let index = 0; index < batch.batchSize; index++) yield rowOf(batch, index);
}

const context = { vocabSize: 512, seed: 3 };

describe('mad_in_context_recall', () => {
  const task = madInContextRecallTask.create(inContextRecallSchema.parse({}), context);

  it("has MAD's baseline: vocabulary 16, 128 tokens (127 model positions), 12 800 train and 1 280 test examples", () => {
    expect(inContextRecallSchema.parse({})).toEqual({
      vocab_size: 16,
      seq_len: 128,
      train_examples: 12_800,
      test_examples: 1_280,
    });
    expect(task.seqLen).toBe(127);
    expect(task.testBatches(640).reduce((sum, batch) => sum + batch.batchSize, 0)).toBe(1_280);
  });

  it('scores, at test, exactly the values of keys presented earlier, each recoverable from the context', () => {
    let scored = 0;
    for (const example of rows(task.testBatches(64))) {
      const lastValue = new Map<number, number>();
      for (let position = 0; position < task.seqLen; position++) {
        const token = example.inputs[position] as number;
        expect(token).toBeLessThan(16);
        if (position % 2 === 1) continue;
        // The target at key position t is the value at t + 1; it is scored iff the key came before.
        const seenValue = lastValue.get(token);
        expect(example.mask[position]).toBe(seenValue === undefined ? 0 : 1);
        if (seenValue !== undefined) {
          expect(example.targets[position]).toBe(seenValue);
          scored++;
        }
        if (position + 1 < task.seqLen) lastValue.set(token, example.inputs[position + 1] as number);
      }
      // The final probe (the last input is a key) is always scored.
      expect(example.mask[task.seqLen - 1]).toBe(1);
    }
    expect(scored).toBeGreaterThan(1_280);
  });

  it('trains on every next token, as MAD does (targets are the inputs shifted by one)', () => {
    const example = rowOf(task.trainBatch(0, 4), 2);
    expect(Array.from(example.mask).every((weight) => weight === 1)).toBe(true);
    expect(Array.from(example.targets.subarray(0, task.seqLen - 1))).toEqual(Array.from(example.inputs.subarray(1)));
  });

  it('keeps keys in the lower half and values in the upper half of the vocabulary, one value per key', () => {
    const rng = new SeededRandom(11);
    for (let trial = 0; trial < 50; trial++) {
      const { tokens } = generateRecallSequence(rng, { vocabSize: 16, seqLen: 128, noiseVocabSize: 0, fracNoise: 0 });
      const valueOfKey = new Map<number, number>();
      for (let at = 0; at < tokens.length; at += 2) {
        expect(tokens[at]).toBeLessThan(8);
        expect(tokens[at + 1]).toBeGreaterThanOrEqual(8);
        const known = valueOfKey.get(tokens[at] as number);
        if (known !== undefined) expect(tokens[at + 1]).toBe(known);
        valueOfKey.set(tokens[at] as number, tokens[at + 1] as number);
      }
    }
  });

  it('is the same data for the same seed and different data for another', () => {
    const other = madInContextRecallTask.create(inContextRecallSchema.parse({}), { ...context, seed: 4 });
    const again = madInContextRecallTask.create(inContextRecallSchema.parse({}), context);
    expect(again.trainBatch(5, 8).inputs).toEqual(task.trainBatch(5, 8).inputs);
    expect(other.trainBatch(5, 8).inputs).not.toEqual(task.trainBatch(5, 8).inputs);
  });

  it('rejects an odd seq_len and a model vocabulary smaller than the task', () => {
    expect(inContextRecallSchema.safeParse({ seq_len: 127 }).error?.issues[0]?.message).toMatch(/even/);
    expect(() => madInContextRecallTask.create(inContextRecallSchema.parse({}), { vocabSize: 8, seed: 0 })).toThrow(
      InterleaveError,
    );
  });
});

describe('mad_noisy_recall', () => {
  const config = noisyRecallSchema.parse({});
  const task = madNoisyRecallTask.create(config, context);

  it("has MAD's baseline: vocabulary 32 of which 16 noise tokens, 20% noise", () => {
    expect(config).toMatchObject({ vocab_size: 32, noise_vocab_size: 16, frac_noise: 0.2, seq_len: 128 });
  });

  it('fills about frac_noise of the slots with noise tokens, never scored, and recall ignores them', () => {
    let noiseSlots = 0;
    let slots = 0;
    for (const example of rows(task.testBatches(128))) {
      const lastValue = new Map<number, number>();
      for (let position = 0; position + 1 < task.seqLen; position += 2) {
        const key = example.inputs[position] as number;
        const value = example.inputs[position + 1] as number;
        slots++;
        if (key >= 16) {
          noiseSlots++;
          expect(value).toBeGreaterThanOrEqual(16);
          expect(example.mask[position]).toBe(0);
          continue;
        }
        expect(value).toBeLessThan(16);
        const seen = lastValue.get(key);
        expect(example.mask[position]).toBe(seen === undefined ? 0 : 1);
        if (seen !== undefined) expect(example.targets[position]).toBe(seen);
        lastValue.set(key, value);
      }
    }
    expect(noiseSlots / slots).toBeGreaterThan(0.17);
    expect(noiseSlots / slots).toBeLessThan(0.23);
  });

  it('always presents at least one pair, however much noise', () => {
    const rng = new SeededRandom(5);
    for (let trial = 0; trial < 200; trial++) {
      const { tokens, testTargets } = generateRecallSequence(rng, {
        vocabSize: 32,
        seqLen: 16,
        noiseVocabSize: 16,
        fracNoise: 0.99,
      });
      expect(testTargets[15]).toBe(tokens[15]);
      expect(Array.from(tokens.subarray(0, 14)).filter((token) => token < 8).length).toBeGreaterThanOrEqual(1);
    }
  });

  it('says which key is wrong when the noise leaves no room for keys and values', () => {
    const result = noisyRecallSchema.safeParse({ vocab_size: 17, noise_vocab_size: 16 });
    expect(result.error?.issues[0]?.path).toEqual(['noise_vocab_size']);
  });
});

describe('mad_fuzzy_recall', () => {
  const layout = { vocabSize: 16, seqLen: 128, keyMotifSize: 3, valueMotifSize: 3 };
  const padToken = 15;
  const keyCount = 7;

  /** Splits a sequence into its pairs: a run of key tokens, then a run of value tokens. */
  function pairsOf(tokens: Int32Array, testTargets: Int32Array) {
    const pairs: { key: string; keySize: number; value: string; scored: boolean[] }[] = [];
    let position = 0;
    while (tokens[position] === padToken) position++;
    while (position < tokens.length) {
      const key: number[] = [];
      while (position < tokens.length && (tokens[position] as number) < keyCount)
        key.push(tokens[position++] as number);
      const value: number[] = [];
      const scored: boolean[] = [];
      while (position < tokens.length && (tokens[position] as number) >= keyCount) {
        value.push(tokens[position] as number);
        scored.push(testTargets[position] !== UNSCORED);
        position++;
      }
      pairs.push({ key: key.join(','), keySize: key.length, value: value.join(','), scored });
    }
    return pairs;
  }

  it("has MAD's baseline: vocabulary 16, 128 positions, motifs of up to 3 tokens", () => {
    expect(fuzzyRecallSchema.parse({})).toMatchObject({
      vocab_size: 16,
      seq_len: 128,
      k_motif_size: 3,
      v_motif_size: 3,
    });
    expect(madFuzzyRecallTask.create(fuzzyRecallSchema.parse({}), context).seqLen).toBe(128);
  });

  it('pads the front to seq_len + 1 tokens; each key keeps one value; repeated keys are scored', () => {
    const rng = new SeededRandom(21);
    for (let trial = 0; trial < 100; trial++) {
      const { tokens, testTargets } = generateFuzzyRecallSequence(rng, 'test', layout);
      expect(tokens.length).toBe(129);
      expect(tokens[128]).not.toBe(padToken);
      const valueOfKey = new Map<string, string>();
      const pairs = pairsOf(tokens, testTargets);
      for (const [index, pair] of pairs.entries()) {
        expect(pair.keySize).toBe(3);
        expect(new Set(pair.key.split(',')).size).toBe(3);
        const known = valueOfKey.get(pair.key);
        if (known !== undefined) expect(pair.value).toBe(known);
        // Scored iff the key was seen before (the probe's own placement is never scored) and,
        // in the last pair, always.
        if (index === pairs.length - 1) expect(pair.scored.every(Boolean)).toBe(true);
        else if (known === undefined) expect(pair.scored.some(Boolean)).toBe(false);
        valueOfKey.set(pair.key, pair.value);
      }
      // The final probe's key was presented before it.
      const last = pairs[pairs.length - 1];
      expect(pairs.slice(0, -1).some((pair) => pair.key === last?.key)).toBe(true);
    }
  });

  it('draws key motifs of every size 1 … k_motif_size in training', () => {
    const rng = new SeededRandom(22);
    const sizes = new Set<number>();
    for (let trial = 0; trial < 20; trial++) {
      const { tokens, testTargets } = generateFuzzyRecallSequence(rng, 'train', layout);
      for (const pair of pairsOf(tokens, testTargets)) sizes.add(pair.keySize);
    }
    expect([...sizes].sort()).toEqual([1, 2, 3]);
  });
});

describe('mad_selective_copying', () => {
  const config = selectiveCopyingSchema.parse({});
  const task = madSelectiveCopyingTask.create(config, context);

  it("has MAD's baseline: vocabulary 16, 256 positions, 16 tokens to copy", () => {
    expect(config).toMatchObject({ vocab_size: 16, seq_len: 256, num_tokens_to_copy: 16, train_examples: 12_800 });
    expect(task.seqLen).toBe(256);
  });

  it('scores, after the copy token, exactly the non-blank tokens before it, in order', () => {
    for (const example of rows([task.trainBatch(0, 32), ...task.testBatches(64).slice(0, 2)])) {
      const copyAt = example.inputs.indexOf(15);
      expect(copyAt).toBe(256 - 16 - 1);
      const content = Array.from(example.inputs.subarray(0, copyAt)).filter((token) => token !== 14);
      expect(content).toHaveLength(16);
      expect(content.every((token) => token < 14)).toBe(true);
      expect(example.inputs[copyAt - 1]).not.toBe(14);
      const scoredTargets = Array.from(example.targets).filter((_, position) => example.mask[position] === 1);
      expect(scoredTargets).toEqual(content);
      expect(Array.from(example.inputs.subarray(copyAt + 1)).every((token) => token === 14)).toBe(true);
      expect(Array.from(example.mask.subarray(copyAt + 1)).every((weight) => weight === 1)).toBe(true);
    }
  });

  it('scatters the blanks: content positions differ between examples', () => {
    const batch = task.trainBatch(0, 2);
    const first = Array.from(rowOf(batch, 0).inputs).map((token) => token === 14);
    const second = Array.from(rowOf(batch, 1).inputs).map((token) => token === 14);
    expect(first).not.toEqual(second);
  });

  it('rejects a sequence too short for the tokens to copy', () => {
    const result = selectiveCopyingSchema.safeParse({ seq_len: 33, num_tokens_to_copy: 16 });
    expect(result.error?.issues[0]?.path).toEqual(['seq_len']);
  });
});

describe('mad_compression', () => {
  const config = compressionSchema.parse({});
  const task = madCompressionTask.create(config, context);

  it("has MAD's baseline (vocabulary 16, 31 content tokens and the compression token) and doubles it to reconstruct", () => {
    expect(config).toMatchObject({ vocab_size: 16, seq_len: 32 });
    expect(task.seqLen).toBe(62);
  });

  it('asks for the content, in order, at the compression tokens after it', () => {
    for (const example of rows(task.testBatches(32).slice(0, 2))) {
      const content = Array.from(example.inputs.subarray(0, 31));
      expect(content.every((token) => token < 15)).toBe(true);
      expect(Array.from(example.inputs.subarray(31)).every((token) => token === 15)).toBe(true);
      expect(Array.from(example.mask.subarray(0, 31)).every((weight) => weight === 0)).toBe(true);
      expect(Array.from(example.mask.subarray(31)).every((weight) => weight === 1)).toBe(true);
      expect(Array.from(example.targets.subarray(31))).toEqual(content);
    }
  });
});

describe('mad_memorization', () => {
  const config = memorizationSchema.parse({});
  const task = madMemorizationTask.create(config, context);

  it("has MAD's baseline: vocabulary 256, 32 positions, 256 train examples", () => {
    expect(config).toMatchObject({ vocab_size: 256, seq_len: 32, train_examples: 256, test_examples: 1_280 });
  });

  it('maps each of the 127 keys to its own value, fixed by the seed', () => {
    const map = memorizationMap(256, 3);
    expect(map).toHaveLength(127);
    expect(new Set(map).size).toBe(127);
    expect(Array.from(map).every((value) => value >= 127 && value < 255)).toBe(true);
    expect(memorizationMap(256, 3)).toEqual(map);
    expect(memorizationMap(256, 4)).not.toEqual(map);
  });

  it('scores the insert tokens with the fixed value of the key before them, in training and at test', () => {
    const map = memorizationMap(256, context.seed);
    for (const example of rows([task.trainBatch(0, 16), task.testBatches(16)[0] as TokenBatch])) {
      for (let position = 0; position < 32; position += 2) {
        expect(example.inputs[position + 1]).toBe(255);
        expect(example.mask[position]).toBe(0);
        expect(example.mask[position + 1]).toBe(1);
        expect(example.targets[position + 1]).toBe(map[example.inputs[position] as number]);
      }
    }
  });

  it('visits each of the 256 train examples once per epoch', () => {
    const firstEpoch = new Set<string>();
    for (let batch = 0; batch < 8; batch++) {
      for (const example of rows([task.trainBatch(batch, 32)])) firstEpoch.add(Array.from(example.inputs).join(' '));
    }
    expect(firstEpoch.size).toBe(256);
  });
});

describe('registration', () => {
  it('registers the six MAD tasks under their names', async () => {
    const container = createContainer();
    await applyPlugin(container, registerBuiltinTasks);
    const registry = container.get<TaskRegistry>(TOKENS.TaskRegistry);
    for (const name of [
      'mad_in_context_recall',
      'mad_fuzzy_recall',
      'mad_noisy_recall',
      'mad_selective_copying',
      'mad_compression',
      'mad_memorization',
    ]) {
      const definition = registry.get(name);
      expect(definition?.name).toBe(name);
      const task = definition?.create(definition.schema.parse({}), context);
      expect(task?.testBatches(1280)[0]?.batchSize).toBe(1280);
    }
  });
});
