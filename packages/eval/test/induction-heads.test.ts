import { describe, expect, it } from 'vitest';
import { inductionHeadsTask, inductionTestBatches, inductionTestBatchStream } from '../src/tasks/induction-heads.js';

const config = inductionHeadsTask.schema.parse({ seq_len: 64, test_examples: 40 });

function rows(batch: ReturnType<typeof inductionTestBatches>[number]) {
  return Array.from({ length: batch.batchSize }, (_, row) => ({
    inputs: Array.from(batch.inputs.subarray(row * batch.seqLen, (row + 1) * batch.seqLen)),
    targets: Array.from(batch.targets.subarray(row * batch.seqLen, (row + 1) * batch.seqLen)),
    mask: Array.from(batch.mask.subarray(row * batch.seqLen, (row + 1) * batch.seqLen)),
  }));
}

describe('induction heads task', () => {
  it('places the trigger twice, the answer after the first, and scores only the last position', () => {
    const task = inductionHeadsTask.create(config, { vocabSize: 16, seed: 1 });
    const trigger = config.vocab - 1;
    for (const example of rows(task.trainBatch(3, 32))) {
      const triggers = example.inputs.flatMap((token, position) => (token === trigger ? [position] : []));
      expect(triggers).toHaveLength(2);
      const [first, last] = triggers as [number, number];
      expect(last).toBe(63);
      expect(first).toBeLessThan(62);
      expect(example.targets[63]).toBe(example.inputs[first + 1]);
      expect(example.mask.reduce((a, b) => a + b, 0)).toBe(1);
      expect(example.mask[63]).toBe(1);
      expect(example.inputs.every((token) => token >= 0 && token < config.vocab)).toBe(true);
    }
  });

  it('spreads the first trigger and the answer over every position and content token', () => {
    const task = inductionHeadsTask.create(config, { vocabSize: 16, seed: 2 });
    const firstPositions = new Set<number>();
    const answers = new Set<number>();
    for (let index = 0; index < 20; index++) {
      for (const example of rows(task.trainBatch(index, 64))) {
        firstPositions.add(example.inputs.indexOf(config.vocab - 1));
        answers.add(example.targets[63] as number);
      }
    }
    expect(firstPositions.size).toBe(62);
    expect(answers.size).toBe(config.vocab - 1);
  });

  it('draws training gaps from a power law when asked, and keeps the test set uniform', () => {
    const skewed = inductionHeadsTask.schema.parse({ seq_len: 64, test_examples: 512, train_gap_power: 0.3 });
    const task = inductionHeadsTask.create(skewed, { vocabSize: 16, seed: 2 });
    const gapsOf = (batches: ReturnType<typeof task.testBatches>) =>
      batches.flatMap((batch) => rows(batch).map((example) => 62 - example.inputs.indexOf(15) - 1));
    const train = gapsOf([task.trainBatch(0, 512)]);
    const test = gapsOf(task.testBatches(512));
    const shortShare = (gaps: number[]) => gaps.filter((gap) => gap < 8).length / gaps.length;
    expect(Math.min(...train)).toBe(0);
    expect(Math.max(...train)).toBeGreaterThan(40);
    // Uniform over 62 gaps puts 8/62 ≈ 13% below 8; gap^(−0.7) puts about half there.
    expect(shortShare(test)).toBeLessThan(0.2);
    expect(shortShare(train)).toBeGreaterThan(0.4);
  });

  it('is deterministic per seed, with a test set apart from the training stream', () => {
    const a = inductionHeadsTask.create(config, { vocabSize: 16, seed: 5 });
    const b = inductionHeadsTask.create(config, { vocabSize: 16, seed: 5 });
    expect(Array.from(a.trainBatch(7, 8).inputs)).toEqual(Array.from(b.trainBatch(7, 8).inputs));
    const train = new Set(rows(a.trainBatch(0, 40)).map((example) => example.inputs.join(',')));
    const test = rows(a.testBatches(40)[0] as never).map((example) => example.inputs.join(','));
    expect(test.filter((example) => train.has(example))).toHaveLength(0);
    expect(a.testBatches(16).reduce((sum, batch) => sum + batch.batchSize, 0)).toBe(40);
  });

  it('draws test sets of any length from the seed alone', () => {
    const long = inductionTestBatches(5, 16, 4096, 3, 2);
    expect(long.map((batch) => batch.batchSize)).toEqual([2, 1]);
    expect(long[0]?.seqLen).toBe(4096);
    const again = inductionTestBatches(5, 16, 4096, 3, 2);
    expect(Array.from(again[1]?.inputs ?? [])).toEqual(Array.from(long[1]?.inputs ?? []));
  });

  it('streams the same test batches one at a time, making none before it is asked for', () => {
    const streamed = [...inductionTestBatchStream(5, 16, 300, 5, 2)];
    const listed = inductionTestBatches(5, 16, 300, 5, 2);
    expect(streamed.map((batch) => Array.from(batch.inputs))).toEqual(listed.map((batch) => Array.from(batch.inputs)));
    expect(streamed.map((batch) => Array.from(batch.targets))).toEqual(
      listed.map((batch) => Array.from(batch.targets)),
    );
    // A million examples of 2^16 tokens would need 786 GB at once; the stream holds one batch.
    const huge = inductionTestBatchStream(5, 16, 65536, 1_000_000, 2);
    const first = huge.next();
    expect(first.done).toBe(false);
    expect(first.value?.batchSize).toBe(2);
    expect(first.value?.seqLen).toBe(65536);
  });

  it('refuses a model vocabulary smaller than the task vocabulary', () => {
    expect(() => inductionHeadsTask.create(config, { vocabSize: 8, seed: 0 })).toThrow(
      /induction_heads uses 16 tokens \(task.vocab\), more than model.vocab_size=8/,
    );
  });
});
