import { defineRegistry, InterleaveError } from '@interleave/core';
import { Tiktoken } from 'js-tiktoken/lite';
import gpt2Ranks from 'js-tiktoken/ranks/gpt2';

/**
 * Text ↔ token ids. Encoding is synchronous so a task can tokenize while it is being created
 * and `tokenize` can stream a corpus chunk by chunk.
 */
export interface TextTokenizer {
  readonly name: string;
  /** Token ids are 0 … vocabSize − 1; model.vocab_size must be at least this. */
  readonly vocabSize: number;
  encode(text: string): number[];
  decode(ids: readonly number[]): string;
  /** The UTF-8 bytes of text these consecutive tokens stand for (for bits per byte). */
  byteLength(ids: readonly number[]): number;
  /** For a tokenizer learned from data: its tokenizer.json, which a run saves beside its weights. */
  readonly saved?: string;
}

/** What a tokenizer may need: the corpus and model size to learn from, or a saved tokenizer. */
export interface TokenizerContext {
  readonly corpusFiles: readonly string[];
  /** Where a tokenizer trained on the corpus is cached. */
  readonly cacheDirectory: string;
  /** model.vocab_size: how many tokens a trained tokenizer learns. */
  readonly vocabSize: number;
  /** A tokenizer.json a run saved: loaded instead of training again. */
  readonly savedFile?: string;
}

/** A tokenizer registered by name (`task.tokenizer`, `tokenize --tokenizer`). */
export interface TokenizerDefinition {
  readonly name: string;
  readonly description: string;
  create(context: TokenizerContext): TextTokenizer;
}

/** The tokenizer registry; plugins add theirs with `api.register(TOKENIZERS, definition)`. */
export const TOKENIZERS = defineRegistry<TokenizerDefinition>('tokenizer');

const utf8 = new TextEncoder();
// Invalid sequences (a cut through a multi-byte character) become U+FFFD instead of throwing.
const lenientUtf8 = new TextDecoder('utf-8', { fatal: false });

/** UTF-8 bytes as tokens 0 … 255: nothing to download, and bits per byte is loss / ln 2. */
export const byteTokenizer: TokenizerDefinition = {
  name: 'byte',
  description: 'UTF-8 bytes, vocabulary 256',
  create: () => ({
    name: 'byte',
    vocabSize: 256,
    encode: (text) => Array.from(utf8.encode(text)),
    decode: (ids) => lenientUtf8.decode(Uint8Array.from(ids)),
    byteLength: (ids) => ids.length,
  }),
};

// GPT-2's end-of-text token, the last of its 50257 ids.
const GPT2_VOCAB = 50257;

/** GPT-2's byte-level BPE, with the ranks js-tiktoken bundles (nothing is downloaded). */
export const gpt2Tokenizer: TokenizerDefinition = {
  name: 'gpt2',
  description: "GPT-2's byte-level BPE (js-tiktoken's bundled ranks), vocabulary 50257",
  create: () => {
    const encoding = new Tiktoken(gpt2Ranks);
    return {
      name: 'gpt2',
      vocabSize: GPT2_VOCAB,
      // Special-token text such as <|endoftext|> in a corpus is ordinary text, not token 50256.
      encode: (text) => encoding.encode(text, [], []),
      decode: (ids) => encoding.decode([...ids]),
      byteLength: (ids) => utf8.encode(encoding.decode([...ids])).length,
    };
  },
};

/** Checks that every id is a token of `tokenizer` (prompts and shards come from users). */
export function requireTokenIds(ids: ArrayLike<number>, tokenizer: TextTokenizer, where: string): void {
  for (let index = 0; index < ids.length; index++) {
    const id = ids[index] as number;
    if (!Number.isInteger(id) || id < 0 || id >= tokenizer.vocabSize) {
      throw new InterleaveError(
        `${where}: token ${id} at position ${index} is not a ${tokenizer.name} token (0 … ${tokenizer.vocabSize - 1})`,
      );
    }
  }
}
