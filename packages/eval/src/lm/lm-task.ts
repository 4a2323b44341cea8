import { resolve } from 'node:path';
import { InterleaveError, type NamedRegistry, type Task, type TaskDefinition, type TokenBatch } from '@interleave/core';
import { z } from 'zod';
import { EpochOrder } from '../tasks/epoch-order.js';
import { IndexedStreams } from '../tasks/indexed-streams.js';
import { emptyTokenBatch } from '../tasks/mqar-example.js';
import { bpeTokenizer } from './bpe-tokenizer.js';
import { resolveCorpusFiles } from './corpus-files.js';
import { readTokens, shardForInput, type TokenShard } from './token-shards.js';
import {
  byteTokenizer,
  gpt2Tokenizer,
  requireTokenIds,
  type TextTokenizer,
  type TokenizerContext,
  type TokenizerDefinition,
} from './tokenizers.js';

export const BUILTIN_TOKENIZERS: readonly TokenizerDefinition[] = [byteTokenizer, gpt2Tokenizer, bpeTokenizer];

export const lmSchema = z.strictObject({
  /** A file, a folder (its .txt and .bin files) or a glob; relative to the working directory. */
  data: z
    .string()
    .min(1)
    .superRefine((data, context) => {
      // Checked with the config, so a wrong path is reported at its line in the config file.
      try {
        resolveCorpusFiles(data);
      } catch (error) {
        context.addIssue({ code: 'custom', message: (error as Error).message.replace(/^task\.data: /, '') });
      }
    }),
  tokenizer: z.string().min(1).default('byte'),
  seq_len: z.number().int().min(2).default(256),
  /** The token width of `.bin` shards (nanoGPT writes uint16 for GPT-2 ids). */
  dtype: z.enum(['uint8', 'uint16', 'uint32']).default('uint16'),
  /**
   * A document is a file, or a piece of this many tokens of a longer one: the unit the
   * train/validation split assigns, so no validation text is ever trained on.
   */
  document_tokens: z.number().int().min(3).default(65536),
  /** The share of documents held out for validation (at least one is). */
  validation_fraction: z.number().gt(0).lt(1).default(0.05),
  /** The split's seed: kept apart from the run's seed so every run of a sweep is scored on the same text. */
  split_seed: z.number().int().default(0),
  /** At most this many validation tokens are evaluated (from the first validation documents). */
  validation_tokens: z.number().int().positive().default(65536),
  /** Where text tokenized by a tokenizer other than `byte` is cached as .bin shards. */
  cache_dir: z.string().default('.interleave-cache'),
});

export type LmConfig = z.infer<typeof lmSchema>;

interface Document {
  readonly shard: TokenShard;
  readonly start: number;
  readonly length: number;
}

/** Cuts every shard into documents and assigns each to train or validation by a seeded draw. */
export function splitDocuments(
  shards: readonly TokenShard[],
  config: Pick<LmConfig, 'document_tokens' | 'validation_fraction' | 'split_seed'>,
): { train: Document[]; validation: Document[] } {
  const documents: Document[] = [];
  for (const shard of shards) {
    for (let start = 0; start < shard.tokens; start += config.document_tokens) {
      documents.push({ shard, start, length: Math.min(config.document_tokens, shard.tokens - start) });
    }
  }
  if (documents.length < 2) {
    throw new InterleaveError(
      `task.data has ${documents.length} document(s) of at most ${config.document_tokens} tokens: ` +
        'a train/validation split needs two (lower task.document_tokens or add files)',
    );
  }
  const draws = new IndexedStreams(config.split_seed, 'lm/split');
  const train: Document[] = [];
  const validation: Document[] = [];
  documents.forEach((document, index) => {
    (draws.open(index).uniform(0, 1) < config.validation_fraction ? validation : train).push(document);
  });
  // A corpus of few documents may draw none (or all) for validation; the last document then
  // moves, so both sides are never empty.
  if (validation.length === 0) validation.push(train.pop() as Document);
  if (train.length === 0) train.push(validation.shift() as Document);
  return { train, validation };
}

/**
 * Next-token prediction over a corpus. Training windows of seq_len + 1 tokens (targets are the
 * inputs shifted by one, every position counts) tile each train document; epoch e visits them
 * in the order seeded by (seed, e), so batch b is a pure function of (seed, b) and the trainer's
 * step count is the whole data position a checkpoint needs. Tokens are read from the shards at
 * offsets when a batch is made: memory does not grow with the corpus.
 */
export class LmTask implements Task {
  readonly description: string;
  readonly seqLen: number;
  readonly evaluationBytes: number;
  readonly trainWindows: number;
  readonly artifacts?: Readonly<Record<string, string>>;
  private readonly train: Document[];
  /** windowEnds[d] = windows in train documents 0 … d. */
  private readonly windowEnds: Float64Array;
  private readonly order: EpochOrder;
  private readonly testSet: { inputs: Int32Array[]; targets: Int32Array[] };

  constructor(
    shards: readonly TokenShard[],
    private readonly tokenizer: TextTokenizer,
    config: LmConfig,
    seed: number,
  ) {
    this.seqLen = config.seq_len;
    if (tokenizer.saved !== undefined) this.artifacts = { 'tokenizer.json': tokenizer.saved };
    const { train, validation } = splitDocuments(shards, config);
    this.train = train.filter((document) => document.length > this.seqLen);
    this.windowEnds = new Float64Array(this.train.length);
    let windows = 0;
    this.train.forEach((document, index) => {
      windows += Math.floor((document.length - 1) / this.seqLen);
      this.windowEnds[index] = windows;
    });
    if (windows === 0) {
      throw new InterleaveError(
        `task.data: no train document is longer than seq_len=${this.seqLen} tokens (raise task.document_tokens or add text)`,
      );
    }
    this.trainWindows = windows;
    this.order = new EpochOrder(windows, new IndexedStreams(seed, 'lm/train-order'));
    this.testSet = this.readValidation(validation, config.validation_tokens);
    if (this.testSet.inputs.length === 0) {
      throw new InterleaveError(
        `task.data: no validation document is longer than seq_len=${this.seqLen} tokens (raise task.validation_fraction or task.document_tokens)`,
      );
    }
    this.evaluationBytes = this.testSet.targets.reduce((sum, targets) => sum + tokenizer.byteLength([...targets]), 0);
    const trainTokens = this.train.reduce((sum, document) => sum + document.length, 0);
    this.description =
      `lm ${tokenizer.name} seq_len=${this.seqLen} train=${trainTokens} tokens (${windows} windows) ` +
      `validation=${this.testSet.inputs.length * this.seqLen} tokens (${this.evaluationBytes} bytes)`;
  }

  trainBatch(batchIndex: number, batchSize: number): TokenBatch {
    const batch = emptyTokenBatch(batchSize, this.seqLen);
    const window = new Int32Array(this.seqLen + 1);
    for (let row = 0; row < batchSize; row++) {
      this.readTrainWindow(this.order.itemAt(batchIndex * batchSize + row), window);
      this.writeRow(batch, row, window);
    }
    batch.mask.fill(1);
    return batch;
  }

  testBatches(batchSize: number): TokenBatch[] {
    const batches: TokenBatch[] = [];
    const { inputs, targets } = this.testSet;
    for (let first = 0; first < inputs.length; first += batchSize) {
      const rows = Math.min(batchSize, inputs.length - first);
      const batch = emptyTokenBatch(rows, this.seqLen);
      for (let row = 0; row < rows; row++) {
        batch.inputs.set(inputs[first + row] as Int32Array, row * this.seqLen);
        batch.targets.set(targets[first + row] as Int32Array, row * this.seqLen);
      }
      batch.mask.fill(1);
      batches.push(batch);
    }
    return batches;
  }

  private readTrainWindow(window: number, into: Int32Array): void {
    let low = 0;
    let high = this.windowEnds.length - 1;
    while (low < high) {
      const middle = (low + high) >> 1;
      if ((this.windowEnds[middle] as number) > window) high = middle;
      else low = middle + 1;
    }
    const document = this.train[low] as Document;
    const first = low === 0 ? 0 : (this.windowEnds[low - 1] as number);
    const start = document.start + (window - first) * this.seqLen;
    readTokens(document.shard, start, this.seqLen + 1, into);
    requireTokenIds(into, this.tokenizer, `${document.shard.file} at token ${start}`);
  }

  private writeRow(batch: TokenBatch, row: number, window: Int32Array): void {
    batch.inputs.set(window.subarray(0, this.seqLen), row * this.seqLen);
    batch.targets.set(window.subarray(1), row * this.seqLen);
  }

  /** Validation windows, in document order, until `maxTokens` targets: the same for every run. */
  private readValidation(documents: readonly Document[], maxTokens: number) {
    const inputs: Int32Array[] = [];
    const targets: Int32Array[] = [];
    const window = new Int32Array(this.seqLen + 1);
    for (const document of documents) {
      for (let offset = 0; offset + this.seqLen < document.length; offset += this.seqLen) {
        if ((inputs.length + 1) * this.seqLen > maxTokens && inputs.length > 0) return { inputs, targets };
        readTokens(document.shard, document.start + offset, this.seqLen + 1, window);
        requireTokenIds(window, this.tokenizer, `${document.shard.file} at token ${document.start + offset}`);
        inputs.push(window.slice(0, this.seqLen));
        targets.push(window.slice(1));
      }
    }
    return { inputs, targets };
  }
}

/** Builds the task's shards: the files `data` names, tokenized (and cached) as needed. */
export function lmShards(
  config: LmConfig,
  tokenizer: TextTokenizer,
  files: readonly string[] = resolveCorpusFiles(config.data),
  log?: (line: string) => void,
): TokenShard[] {
  const cacheDirectory = resolve(config.cache_dir);
  return files.map((file) =>
    shardForInput(file, tokenizer, { dtype: config.dtype, cacheDirectory, ...(log ? { log } : {}) }),
  );
}

/** The tokenizer `name` from `registry`, with the valid names in the error. */
export function createTokenizer(
  registry: NamedRegistry<TokenizerDefinition>,
  name: string,
  context: TokenizerContext,
): TextTokenizer {
  const definition = registry.get(name);
  if (definition === undefined) {
    throw new InterleaveError(`task.tokenizer: unknown tokenizer '${name}' (one of: ${registry.names().join(', ')})`);
  }
  return definition.create(context);
}

/** `lm`, resolving tokenizers by name in `tokenizers` (the container's registry) when a run starts. */
export function lmTask(tokenizers: NamedRegistry<TokenizerDefinition>): TaskDefinition<LmConfig> {
  return {
    name: 'lm',
    description: 'Language modelling: next-token prediction on text files or token shards.',
    schema: lmSchema,
    create: (config, context) => {
      const files = resolveCorpusFiles(config.data);
      const tokenizer = createTokenizer(tokenizers, config.tokenizer, {
        corpusFiles: files,
        cacheDirectory: resolve(config.cache_dir),
        vocabSize: context.vocabSize,
      });
      if (context.vocabSize < tokenizer.vocabSize) {
        throw new InterleaveError(
          `the ${tokenizer.name} tokenizer has ${tokenizer.vocabSize} tokens (task.tokenizer), more than model.vocab_size=${context.vocabSize}`,
        );
      }
      return new LmTask(lmShards(config, tokenizer, files), tokenizer, config, context.seed);
    },
  };
}
