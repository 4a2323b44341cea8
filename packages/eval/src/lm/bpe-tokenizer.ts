import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer as JsTokenizer } from '@huggingface/tokenizers';
import { InterleaveError } from '@interleave/core';
import type * as NativeTokenizers from 'tokenizers';
import type { TextTokenizer, TokenizerContext, TokenizerDefinition } from './tokenizers.js';

// The native package is CommonJS that picks its platform's binary when loaded: loaded on first use.
const load = () => createRequire(import.meta.url)('tokenizers') as typeof NativeTokenizers;

const utf8 = new TextEncoder();
// tokenizers' JSON for GPT-2's byte-level decoder: maps the 256 byte symbols back to bytes.
const BYTE_LEVEL_DECODER = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };

interface TokenizerJson {
  model: { vocab: Record<string, number>; merges: (string | [string, string])[] };
  decoder: unknown;
  [key: string]: unknown;
}

/**
 * Trains a byte-level BPE on `files` with Hugging Face's `tokenizers` and returns its
 * tokenizer.json, cut to `vocabSize` tokens. The package's JavaScript binding trains with the
 * default trainer only (vocabulary 30000, alphabet = the characters seen), so the result is
 * adjusted in its JSON: the vocabulary becomes all 256 byte symbols (every text encodes) and
 * then the learned merges in the order learned, until `vocabSize`.
 */
export function trainBpeJson(files: readonly string[], vocabSize: number): string {
  const native = load();
  const tokenizer = new native.Tokenizer(native.BPE.empty());
  tokenizer.setPreTokenizer(native.byteLevelPreTokenizer(false, true));
  tokenizer.train([...files]);
  const scratch = mkdtempSync(join(tmpdir(), 'interleave-bpe-'));
  let json: TokenizerJson;
  try {
    tokenizer.save(join(scratch, 'tokenizer.json'));
    json = JSON.parse(readFileSync(join(scratch, 'tokenizer.json'), 'utf8')) as TokenizerJson;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const vocab: Record<string, number> = {};
  let size = 0;
  for (const symbol of native.byteLevelAlphabet().sort()) vocab[symbol] = size++;
  const merges: [string, string][] = [];
  for (const merge of json.model.merges) {
    if (size >= vocabSize) break;
    const [left, right] = (Array.isArray(merge) ? merge : merge.split(' ')) as [string, string];
    const merged = left + right;
    if (vocab[left] === undefined || vocab[right] === undefined || vocab[merged] !== undefined) continue;
    vocab[merged] = size++;
    merges.push([left, right]);
  }
  json.model.vocab = vocab;
  json.model.merges = merges;
  json.decoder = BYTE_LEVEL_DECODER;
  return `${JSON.stringify(json)}\n`;
}

function tokenizerFromJson(text: string, source: string): TextTokenizer {
  let json: TokenizerJson;
  let encoder: JsTokenizer;
  try {
    json = JSON.parse(text) as TokenizerJson;
    encoder = new JsTokenizer(json, {});
  } catch (error) {
    throw new InterleaveError(`${source}: not a tokenizer.json (${(error as Error).message})`);
  }
  const decode = (ids: readonly number[]) => encoder.decode([...ids]);
  return {
    name: 'bpe',
    vocabSize: Object.keys(json.model.vocab).length,
    encode: (input) => encoder.encode(input).ids,
    decode,
    byteLength: (ids) => utf8.encode(decode(ids)).length,
    saved: text,
  };
}

/**
 * A BPE trained on the run's corpus (the train and validation text alike, as a tokenizer
 * trained before the split would be), with as many tokens as the model's vocabulary. Trained
 * once per corpus and size, cached in the cache folder; a run saves it as `tokenizer.json`.
 */
export const bpeTokenizer: TokenizerDefinition = {
  name: 'bpe',
  description: 'a byte-level BPE trained on the corpus (Hugging Face tokenizers), model.vocab_size tokens',
  create: (context: TokenizerContext) => {
    if (context.savedFile !== undefined)
      return tokenizerFromJson(readFileSync(context.savedFile, 'utf8'), context.savedFile);
    if (context.vocabSize <= 256) {
      throw new InterleaveError(
        `the bpe tokenizer learns model.vocab_size tokens: ${context.vocabSize} leaves no room beyond the 256 bytes`,
      );
    }
    const text = context.corpusFiles.filter((file) => !file.endsWith('.bin'));
    // Shards written by `interleave tokenize --tokenizer bpe` carry their tokenizer beside them.
    const besideShard = context.corpusFiles
      .filter((file) => file.endsWith('.bin'))
      .map((file) => `${file.slice(0, -'.bin'.length)}.tokenizer.json`)
      .find((file) => existsSync(file));
    if (text.length === 0 && besideShard !== undefined) {
      return tokenizerFromJson(readFileSync(besideShard, 'utf8'), besideShard);
    }
    if (text.length === 0)
      throw new InterleaveError('the bpe tokenizer is trained on text: task.data names no .txt files');
    const key = createHash('sha256');
    for (const file of text) key.update(`${file}\0${statSync(file).size}\0${statSync(file).mtimeMs}\0`);
    key.update(String(context.vocabSize));
    const cached = join(context.cacheDirectory, `bpe-${context.vocabSize}-${key.digest('hex').slice(0, 16)}.json`);
    if (!existsSync(cached)) {
      mkdirSync(context.cacheDirectory, { recursive: true });
      writeFileSync(`${cached}.partial-${process.pid}`, trainBpeJson(text, context.vocabSize));
      renameSync(`${cached}.partial-${process.pid}`, cached);
    }
    return tokenizerFromJson(readFileSync(cached, 'utf8'), cached);
  },
};
