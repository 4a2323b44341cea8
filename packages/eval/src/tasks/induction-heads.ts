import { InterleaveError, type SeededRandom, type Task, type TaskDefinition, type TokenBatch } from '@interleave/core';
import { z } from 'zod';
import { IndexedStreams } from './indexed-streams.js';
import { emptyTokenBatch } from './mqar-example.js';

/**
 * Induction heads (docs/design.md#induction-heads, the Mamba paper's §4.1): random tokens from a vocabulary of
 * `vocab`, one of which is the trigger. The trigger appears once at a random position followed by
 * a token t, and again as the last token; the model must then output t. Loss and accuracy count
 * the last position only.
 */
export const inductionHeadsSchema = z.strictObject({
  seq_len: z.number().int().min(4),
  /** Tokens 0 … vocab−2 are content, vocab−1 is the trigger; model.vocab_size must be ≥ vocab. */
  vocab: z.number().int().min(3).default(16),
  test_examples: z.number().int().positive().default(512),
  /**
   * How training draws the gap between the answer and the final trigger: `null` (default, the
   * reference protocol) uniformly over every position; a number a in (0, 1] with weight
   * gap^(a−1), so short gaps are common and long ones still occur (Zoology draws MQAR's query
   * gaps this way). Test sets are always uniform.
   */
  train_gap_power: z.number().positive().max(1).nullable().default(null),
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
  gapWeights?: Float64Array,
): void {
  const trigger = vocab - 1;
  const offset = row * seqLen;
  for (let position = 0; position < seqLen - 1; position++) batch.inputs[offset + position] = rng.int(trigger);
  // The first trigger may sit anywhere that leaves room for its token before the final trigger:
  // at seqLen − 2 − gap for a gap of 0 … seqLen − 3 tokens between the answer and the end.
  const first = gapWeights === undefined ? rng.int(seqLen - 2) : seqLen - 3 - drawIndex(rng, gapWeights);
  const answer = rng.int(trigger);
  batch.inputs[offset + first] = trigger;
  batch.inputs[offset + first + 1] = answer;
  batch.inputs[offset + seqLen - 1] = trigger;
  batch.targets[offset + seqLen - 1] = answer;
  batch.mask[offset + seqLen - 1] = 1;
}

/** Cumulative weights gap^(power−1) for gaps 1 … seqLen − 2 (index 0 is a gap of one token). */
export function powerLawGapWeights(seqLen: number, power: number): Float64Array {
  const cumulative = new Float64Array(seqLen - 2);
  let total = 0;
  for (let index = 0; index < cumulative.length; index++) {
    total += (index + 1) ** (power - 1);
    cumulative[index] = total;
  }
  return cumulative;
}

function drawIndex(rng: SeededRandom, cumulative: Float64Array): number {
  const target = rng.uniform(0, cumulative[cumulative.length - 1] as number);
  let low = 0;
  let high = cumulative.length - 1;
  while (low < high) {
    const middle = (low + high) >> 1;
    if ((cumulative[middle] as number) > target) high = middle;
    else low = middle + 1;
  }
  return low;
}

/** Test sets for any length, drawn from the test stream: the same examples for every model. */
export function inductionTestBatches(
  seed: number,
  vocab: number,
  seqLen: number,
  examples: number,
  batchSize: number,
): TokenBatch[] {
  return [...inductionTestBatchStream(seed, vocab, seqLen, examples, batchSize)];
}

/**
 * The same batches as `inductionTestBatches`, made one at a time when asked for: at 2^16 tokens,
 * 1,000 examples take 786 MB as one array of batches (inputs, targets and mask), one batch of 250
 * takes 197 MB, so long extrapolation lengths hold only the batch being evaluated.
 */
export function* inductionTestBatchStream(
  seed: number,
  vocab: number,
  seqLen: number,
  examples: number,
  batchSize: number,
): Generator<TokenBatch> {
  const streams = new IndexedStreams(seed, `${TEST_STREAM}/${seqLen}`);
  for (let first = 0; first < examples; first += batchSize) {
    const rows = Math.min(batchSize, examples - first);
    const batch = emptyTokenBatch(rows, seqLen);
    for (let row = 0; row < rows; row++) writeInductionExample(streams.open(first + row), vocab, seqLen, batch, row);
    yield batch;
  }
}

/** An endless train stream (example i is a pure function of (seed, i)) and a fixed test set. */
export class InductionHeadsTask implements Task {
  readonly description: string;
  readonly seqLen: number;
  private readonly trainStreams: IndexedStreams;
  private readonly gapWeights: Float64Array | undefined;

  constructor(
    private readonly config: InductionHeadsConfig,
    private readonly seed: number,
  ) {
    this.seqLen = config.seq_len;
    this.description = `induction_heads seq_len=${config.seq_len} vocab=${config.vocab}`;
    this.trainStreams = new IndexedStreams(seed, TRAIN_STREAM);
    this.gapWeights =
      config.train_gap_power === null ? undefined : powerLawGapWeights(config.seq_len, config.train_gap_power);
  }

  trainBatch(batchIndex: number, batchSize: number): TokenBatch {
    const batch = emptyTokenBatch(batchSize, this.seqLen);
    for (let row = 0; row < batchSize; row++) {
      const rng = this.trainStreams.open(batchIndex * batchSize + row);
      writeInductionExample(rng, this.config.vocab, this.seqLen, batch, row, this.gapWeights);
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
