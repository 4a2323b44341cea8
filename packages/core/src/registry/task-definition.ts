import type { z } from 'zod';

/**
 * A batch of token sequences, as plain typed arrays (row-major [batch, seqLen]); the trainer
 * turns them into tensors. Loss and accuracy count only positions where `mask` is 1.
 */
export interface TokenBatch {
  batchSize: number;
  seqLen: number;
  inputs: Int32Array;
  targets: Int32Array;
  mask: Float32Array;
}

export interface TaskContext {
  vocabSize: number;
  /** The experiment seed; tasks derive separate train and test streams from it. */
  seed: number;
}

/** A data source for training and evaluation. */
export interface Task {
  /** One line for logs, e.g. `mqar seq_len=64 kv_pairs=8`. */
  readonly description: string;
  readonly seqLen: number;
  /**
   * The training batch at position `batchIndex` (0, 1, 2, ...). Deterministic in
   * (seed, batchIndex, batchSize), so a resumed run sees exactly the data it would have seen.
   */
  trainBatch(batchIndex: number, batchSize: number): TokenBatch;
  /** The held-out test set, generated from a seed different from the training data's. */
  testBatches(batchSize: number): TokenBatch[];
  /**
   * For tasks over text: the UTF-8 bytes of text that the test set's supervised targets cover,
   * so a run can report bits per byte (total nats / (ln 2 · bytes)), comparable across tokenizers.
   */
  readonly evaluationBytes?: number;
  /** Files a run saves in its artifacts (name → text), e.g. a tokenizer learned from the data. */
  readonly artifacts?: Readonly<Record<string, string>>;
}

/** A task registers under `name` and validates its own config keys (all but `name`). */
export interface TaskDefinition<Config = unknown> {
  readonly name: string;
  readonly description: string;
  readonly schema: z.ZodType<Config>;
  create(config: Config, context: TaskContext): Task;
}
