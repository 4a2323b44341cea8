import { InterleaveError, type SeededRandom, type Task, type TaskDefinition, type TokenBatch } from '@interleave/core';
import { z } from 'zod';
import { IndexedStreams } from './indexed-streams.js';
import { emptyTokenBatch } from './mqar-example.js';

/**
 * Induction heads (SPEC §4.2, the Mamba paper's §4.1): random tokens from a vocabulary of
 * `vocab`, one of which is the trigger. The trigger appears once at a random position followed by
 * a token t, and again as the last token; the model must then output t. Loss and accuracy count
 * the last position only.
 */
export const inductionHeadsSchema = z.strictObject({
  seq_len: z.number().int().min(4),
  /** Tokens 0 … vocab−2 are content, vocab−1 is the trigger; model.vocab_size must be ≥ vocab. */
  vocab: z.number().int().min(3).default(16),
  test_examples: z.number().int().positive().default(512),
});

export type InductionHeadsConfig = z.infer<typeof inductionHeadsSchema>;

const TRAIN_STREAM = 'induction-heads/train';
const TEST_STREAM = 'induction-heads/test';

/** Writes one example of length `seqLen` into row `row` of `batch`. */
export function writeInductionExample(
  rng: SeededRandom,
  vocab: number,
  seqLen: number,
  batch: TokenBatch,
  row: number,
): void {
  const trigger = vocab - 1;
  const offset = row * seqLen;
  for (let position = 0; position < seqLen - 1; position++) batch.inputs[offset + position] = rng.int(trigger);
  // The first trigger may sit anywhere that leaves room for its token before the final trigger.
  const first = rng.int(seqLen - 2);
  const answer = rng.int(trigger);
  batch.inputs[offset + first] = trigger;
  batch.inputs[offset + first + 1] = answer;
  batch.inputs[offset + seqLen - 1] = trigger;
  batch.targets[offset + seqLen - 1] = answer;
  batch.mask[offset + seqLen - 1] = 1;
}

/** Test sets for any length, drawn from the test stream: the same examples for every model. */
export function inductionTestBatches(
  seed: number,
  vocab: number,
  seqLen: number,
  examples: number,
  batchSize: number,
): TokenBatch[] {
  const streams = new IndexedStreams(seed, `${TEST_STREAM}/${seqLen}`);
  const batches: TokenBatch[] = [];
  for (let first = 0; first < examples; first += batchSize) {
    const rows = Math.min(batchSize, examples - first);
    const batch = emptyTokenBatch(rows, seqLen);
    for (let row = 0; row < rows; row++) writeInductionExample(streams.open(first + row), vocab, seqLen, batch, row);
    batches.push(batch);
  }
  return batches;
}

/** An endless train stream (example i is a pure function of (seed, i)) and a fixed test set. */
export class InductionHeadsTask implements Task {
  readonly description: string;
  readonly seqLen: number;
  private readonly trainStreams: IndexedStreams;

  constructor(
    private readonly config: InductionHeadsConfig,
    private readonly seed: number,
  ) {
    this.seqLen = config.seq_len;
    this.description = `induction_heads seq_len=${config.seq_len} vocab=${config.vocab}`;
    this.trainStreams = new IndexedStreams(seed, TRAIN_STREAM);
  }

  trainBatch(batchIndex: number, batchSize: number): TokenBatch {
    const batch = emptyTokenBatch(batchSize, this.seqLen);
    for (let row = 0; row < batchSize; row++) {
      const rng = this.trainStreams.open(batchIndex * batchSize + row);
      writeInductionExample(rng, this.config.vocab, this.seqLen, batch, row);
    }
    return batch;
  }

  testBatches(batchSize: number): TokenBatch[] {
    return inductionTestBatches(this.seed, this.config.vocab, this.seqLen, this.config.test_examples, batchSize);
  }
}

export const inductionHeadsTask: TaskDefinition<InductionHeadsConfig> = {
  name: 'induction_heads',
  description: 'Induction heads: after the trigger token appears again, output the token that followed it before.',
  schema: inductionHeadsSchema,
  create: (config, context) => {
    if (context.vocabSize < config.vocab) {
      throw new InterleaveError(
        `induction_heads uses ${config.vocab} tokens (task.vocab), more than model.vocab_size=${context.vocabSize}`,
      );
    }
    return new InductionHeadsTask(config, context.seed);
  },
};
