import {
  InterleaveError,
  SeededRandom,
  type Task,
  type TaskContext,
  type TaskDefinition,
  type TokenBatch,
} from '@interleave/core';
import { z } from 'zod';
import { EpochOrder } from './epoch-order.js';
import { IndexedStreams } from './indexed-streams.js';
import { emptyTokenBatch, MqarExampleWriter } from './mqar-example.js';

/**
 * Keys of `task:` for MQAR. vocab_size belongs to the model, so the checks that involve it
 * run in `create`, where it is known.
 */
export const mqarSchema = z
  .strictObject({
    seq_len: z
      .number()
      .int()
      .positive()
      // Queries sit at even offsets after the context, so the query region must pair up.
      .refine((length) => length % 2 === 0, { message: 'seq_len must be even' }),
    num_kv_pairs: z.number().int().min(1),
    train_examples: z.number().int().positive().default(100_000),
    test_examples: z.number().int().positive().default(1000),
    /**
     * Query gap slot g is drawn with weight g^(power_a − 1): small values favour short gaps, 1 =
     * uniform. Separate for the train and the test set, as Zoology's `multiquery_ar`.
     */
    train_power_a: z.number().positive().finite().default(0.01),
    test_power_a: z.number().positive().finite().default(0.01),
    /** The old single key: an error that says how to migrate (both values were the same). */
    power_a: z
      .never({
        error:
          "power_a was split into train_power_a and test_power_a (as in Zoology's multiquery_ar); " +
          'write both, e.g. power_a: 0.01 → train_power_a: 0.01 and test_power_a: 0.01',
      })
      .optional(),
    /**
     * Zoology's `random_non_queries`: fill the positions that are neither pairs nor queries with
     * uniform tokens from the whole vocabulary (true, its default), or leave them 0 (false, as in
     * its Figure 2 configs).
     */
    random_non_queries: z.boolean().default(true),
  })
  .superRefine((config, context) => {
    // 2K context tokens, then at least K query slots of two positions each (Zoology's bound).
    const minimum = 4 * config.num_kv_pairs;
    if (config.seq_len < minimum) {
      context.addIssue({
        code: 'custom',
        path: ['seq_len'],
        message: `seq_len must be at least 4 × num_kv_pairs = ${minimum} (${config.num_kv_pairs} pairs, then one query slot per key)`,
      });
    }
  });

export type MqarConfig = z.infer<typeof mqarSchema>;

const TRAIN_STREAM = 'mqar/train';
const TEST_STREAM = 'mqar/test';
const TRAIN_ORDER_STREAM = 'mqar/train-order';

/**
 * MQAR over a fixed, finite train set (example i is a pure function of (seed, i), generated
 * on demand rather than stored) visited in shuffled epochs, and a test set drawn from its own
 * stream.
 */
export class MqarTask implements Task {
  readonly description: string;
  readonly seqLen: number;
  private readonly trainWriter: MqarExampleWriter;
  private readonly testWriter: MqarExampleWriter;
  private readonly trainStreams: IndexedStreams;
  private readonly testStreams: IndexedStreams;
  private readonly trainOrder: EpochOrder;
  /** One generator, re-seeded per example (IndexedStreams.open), for the batches drawn here. */
  private readonly exampleRng = new SeededRandom(0);

  constructor(
    private readonly config: MqarConfig,
    context: TaskContext,
  ) {
    checkVocabulary(config, context.vocabSize);
    this.seqLen = config.seq_len;
    this.description = `mqar seq_len=${config.seq_len} kv_pairs=${config.num_kv_pairs}`;
    const writer = (powerA: number) =>
      new MqarExampleWriter({
        seqLen: config.seq_len,
        numKvPairs: config.num_kv_pairs,
        vocabSize: context.vocabSize,
        powerA,
        randomNonQueries: config.random_non_queries,
      });
    this.trainWriter = writer(config.train_power_a);
    this.testWriter = writer(config.test_power_a);
    this.trainStreams = new IndexedStreams(context.seed, TRAIN_STREAM);
    this.testStreams = new IndexedStreams(context.seed, TEST_STREAM);
    this.trainOrder = new EpochOrder(config.train_examples, new IndexedStreams(context.seed, TRAIN_ORDER_STREAM));
  }

  trainBatch(batchIndex: number, batchSize: number): TokenBatch {
    checkCount('batchIndex', batchIndex, 0);
    checkCount('batchSize', batchSize, 1);
    const batch = emptyTokenBatch(batchSize, this.seqLen);
    const first = batchIndex * batchSize;
    for (let row = 0; row < batchSize; row++) {
      this.trainWriter.write(this.trainStreams.open(this.trainExampleAt(first + row), this.exampleRng), batch, row);
    }
    return batch;
  }

  testBatches(batchSize: number): TokenBatch[] {
    checkCount('batchSize', batchSize, 1);
    const batches: TokenBatch[] = [];
    for (let first = 0; first < this.config.test_examples; first += batchSize) {
      const rows = Math.min(batchSize, this.config.test_examples - first);
      const batch = emptyTokenBatch(rows, this.seqLen);
      for (let row = 0; row < rows; row++) {
        this.testWriter.write(this.testStreams.open(first + row, this.exampleRng), batch, row);
      }
      batches.push(batch);
    }
    return batches;
  }

  /** Which train example sits at position `position` of the epoch-shuffled train stream. */
  trainExampleAt(position: number): number {
    return this.trainOrder.itemAt(position);
  }

  /** Train example `index` alone, as a batch of one (for inspection and tests). */
  trainExample(index: number): TokenBatch {
    if (!Number.isInteger(index) || index < 0 || index >= this.config.train_examples) {
      throw new RangeError(`train example ${index} is outside 0 .. ${this.config.train_examples - 1}`);
    }
    return this.single(this.trainWriter, this.trainStreams, index);
  }

  /** Test example `index` alone, as a batch of one. */
  testExample(index: number): TokenBatch {
    if (!Number.isInteger(index) || index < 0 || index >= this.config.test_examples) {
      throw new RangeError(`test example ${index} is outside 0 .. ${this.config.test_examples - 1}`);
    }
    return this.single(this.testWriter, this.testStreams, index);
  }

  private single(writer: MqarExampleWriter, streams: IndexedStreams, index: number): TokenBatch {
    const batch = emptyTokenBatch(1, this.seqLen);
    writer.write(streams.open(index), batch, 0);
    return batch;
  }
}

/** The checks that need the model's vocabulary size, reported against both config keys. */
function checkVocabulary(config: MqarConfig, vocabSize: number): void {
  if (vocabSize <= config.seq_len) {
    throw new InterleaveError(
      `mqar needs model.vocab_size > task.seq_len (as Zoology does), got model.vocab_size=${vocabSize}, task.seq_len=${config.seq_len}`,
    );
  }
  // Implied by the check above and seq_len ≥ 4K today; kept so that loosening either cannot
  // silently make the key half too small to hold K distinct keys.
  const distinctKeys = Math.floor(vocabSize / 2) - 1;
  if (distinctKeys < config.num_kv_pairs) {
    throw new InterleaveError(
      `mqar draws keys from [1, model.vocab_size/2): model.vocab_size=${vocabSize} gives ${distinctKeys} keys, fewer than task.num_kv_pairs=${config.num_kv_pairs} (task.seq_len=${config.seq_len})`,
    );
  }
}

function checkCount(name: string, value: number, minimum: number): void {
  if (!Number.isSafeInteger(value) || value < minimum) {
    throw new RangeError(`${name} must be an integer ≥ ${minimum}, got ${value}`);
  }
}

export const mqarTask: TaskDefinition<MqarConfig> = {
  name: 'mqar',
  description: 'Multi-query associative recall (Zoology): recall the value paired with each queried key.',
  schema: mqarSchema,
  create: (config, context) => new MqarTask(config, context),
};
