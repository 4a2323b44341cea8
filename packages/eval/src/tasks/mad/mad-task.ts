import { InterleaveError, type SeededRandom, type Task, type TokenBatch } from '@interleave/core';
import { z } from 'zod';
import { EpochOrder } from '../epoch-order.js';
import { IndexedStreams } from '../indexed-streams.js';
import { emptyTokenBatch } from '../mqar-example.js';

/** Which set an example belongs to: MAD scores some tasks differently in training and at test. */
export type MadSplit = 'train' | 'test';

/**
 * Writes one example into row `row` of `batch` (inputs, targets and mask of `seqLen` positions).
 * Everything random comes from `rng`, so the example is a pure function of its stream.
 */
export type MadExampleWriter = (rng: SeededRandom, split: MadSplit, batch: TokenBatch, row: number) => void;

/** The set sizes every MAD task shares, with MAD's defaults (`mad/configs.py`, MADConfig). */
export const madSetSizes = {
  train_examples: z.number().int().positive().default(12_800),
  test_examples: z.number().int().positive().default(1_280),
};

export interface MadTaskOptions {
  /** The registered name, e.g. `mad_in_context_recall`; it also names the random streams. */
  name: string;
  description: string;
  seqLen: number;
  trainExamples: number;
  testExamples: number;
  seed: number;
  write: MadExampleWriter;
}

/**
 * A MAD task as MAD runs it (docs/design.md#mad-tasks): a fixed train set of `trainExamples`
 * examples visited in shuffled epochs (MAD trains for epochs over a stored set), and a test set
 * from a stream of its own. Example i is a pure function of (seed, i), generated on demand.
 */
export class MadTask implements Task {
  readonly description: string;
  readonly seqLen: number;
  private readonly trainStreams: IndexedStreams;
  private readonly testStreams: IndexedStreams;
  private readonly trainOrder: EpochOrder;

  constructor(private readonly options: MadTaskOptions) {
    this.description = options.description;
    this.seqLen = options.seqLen;
    this.trainStreams = new IndexedStreams(options.seed, `${options.name}/train`);
    this.testStreams = new IndexedStreams(options.seed, `${options.name}/test`);
    this.trainOrder = new EpochOrder(
      options.trainExamples,
      new IndexedStreams(options.seed, `${options.name}/train-order`),
    );
  }

  trainBatch(batchIndex: number, batchSize: number): TokenBatch {
    checkCount('batchIndex', batchIndex, 0);
    checkCount('batchSize', batchSize, 1);
    const batch = emptyTokenBatch(batchSize, this.seqLen);
    const first = batchIndex * batchSize;
    for (let row = 0; row < batchSize; row++) {
      const example = this.trainOrder.itemAt(first + row);
      this.options.write(this.trainStreams.open(example), 'train', batch, row);
    }
    return batch;
  }

  testBatches(batchSize: number): TokenBatch[] {
    checkCount('batchSize', batchSize, 1);
    const batches: TokenBatch[] = [];
    for (let first = 0; first < this.options.testExamples; first += batchSize) {
      const rows = Math.min(batchSize, this.options.testExamples - first);
      const batch = emptyTokenBatch(rows, this.seqLen);
      for (let row = 0; row < rows; row++) this.options.write(this.testStreams.open(first + row), 'test', batch, row);
      batches.push(batch);
    }
    return batches;
  }

  /** Train example `index` (not its position in the shuffled order) alone, as a batch of one. */
  trainExample(index: number): TokenBatch {
    return this.single(this.trainStreams, 'train', index, this.options.trainExamples);
  }

  /** Test example `index` alone, as a batch of one. */
  testExample(index: number): TokenBatch {
    return this.single(this.testStreams, 'test', index, this.options.testExamples);
  }

  private single(streams: IndexedStreams, split: MadSplit, index: number, count: number): TokenBatch {
    if (!Number.isInteger(index) || index < 0 || index >= count) {
      throw new RangeError(`${split} example ${index} is outside 0 .. ${count - 1}`);
    }
    const batch = emptyTokenBatch(1, this.seqLen);
    this.options.write(streams.open(index), split, batch, 0);
    return batch;
  }
}

/**
 * Writes a token sequence the way MAD feeds it to a language model in training: inputs are
 * tokens[0 .. n−2], targets tokens[1 .. n−1], every position scored (MAD's train targets are the
 * shifted inputs, whatever the task scores at test).
 */
export function writeShifted(tokens: ArrayLike<number>, batch: TokenBatch, row: number): void {
  const offset = row * batch.seqLen;
  for (let position = 0; position < batch.seqLen; position++) {
    batch.inputs[offset + position] = tokens[position] as number;
    batch.targets[offset + position] = tokens[position + 1] as number;
    batch.mask[offset + position] = 1;
  }
}

/** The model's vocabulary must hold every token the task writes. */
export function checkModelVocabulary(task: string, tokens: number, modelVocabSize: number): void {
  if (modelVocabSize < tokens) {
    throw new InterleaveError(
      `${task} writes tokens 0 … ${tokens - 1} (task.vocab_size=${tokens}), more than model.vocab_size=${modelVocabSize}`,
    );
  }
}

/** A uniform draw from the integers [low, high). */
export function drawBetween(rng: SeededRandom, low: number, high: number): number {
  return low + rng.int(high - low);
}

function checkCount(name: string, value: number, minimum: number): void {
  if (!Number.isSafeInteger(value) || value < minimum) {
    throw new RangeError(`${name} must be an integer ≥ ${minimum}, got ${value}`);
  }
}
