import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readSync, renameSync, statSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { InterleaveError } from '@interleave/core';
import { isShardFile } from './corpus-files.js';
import type { TextTokenizer } from './tokenizers.js';

export type TokenDtype = 'uint8' | 'uint16' | 'uint32';

const DTYPE_BYTES: Record<TokenDtype, number> = { uint8: 1, uint16: 2, uint32: 4 };

/** A flat file of token ids (little-endian), read in windows at offsets: never loaded whole. */
export interface TokenShard {
  readonly file: string;
  readonly dtype: TokenDtype;
  readonly tokens: number;
}

export function shardOf(file: string, dtype: TokenDtype): TokenShard {
  const bytes = statSync(file).size;
  const width = DTYPE_BYTES[dtype];
  if (bytes % width !== 0) {
    throw new InterleaveError(`${file}: ${bytes} bytes is not a whole number of ${dtype} tokens (task.dtype)`);
  }
  return { file, dtype, tokens: bytes / width };
}

/** Tokens [start, start + count) of `shard` into `into` at `at`, with one positioned read. */
export function readTokens(shard: TokenShard, start: number, count: number, into: Int32Array, at = 0): void {
  const width = DTYPE_BYTES[shard.dtype];
  const buffer = Buffer.alloc(count * width);
  const descriptor = openSync(shard.file, 'r');
  try {
    let done = 0;
    while (done < buffer.length) {
      const read = readSync(descriptor, buffer, done, buffer.length - done, start * width + done);
      if (read === 0) throw new InterleaveError(`${shard.file}: ended before token ${start + count}`);
      done += read;
    }
  } finally {
    closeSync(descriptor);
  }
  for (let index = 0; index < count; index++) {
    const offset = index * width;
    into[at + index] =
      shard.dtype === 'uint8'
        ? (buffer[offset] as number)
        : shard.dtype === 'uint16'
          ? buffer.readUInt16LE(offset)
          : buffer.readUInt32LE(offset);
  }
}

/** The narrowest dtype that holds every id of a vocabulary. */
export function dtypeForVocabulary(vocabSize: number): TokenDtype {
  return vocabSize <= 256 ? 'uint8' : vocabSize <= 65536 ? 'uint16' : 'uint32';
}

export interface TokenizeProgress {
  readonly bytesRead: number;
  readonly bytesTotal: number;
  readonly tokens: number;
}

// Text is read in chunks this large and cut after the last newline, so no word (and, as long
// as lines are shorter than a chunk, no line) is split between two encode calls.
const CHUNK_BYTES = 1 << 20;

/**
 * Streams text files through `tokenizer` into one flat shard at `outFile` (written to a
 * temporary name and renamed, so an interrupted run leaves no half shard). Memory stays at a
 * chunk whatever the size of the input. Returns the number of tokens written.
 */
export function tokenizeFiles(
  files: readonly string[],
  tokenizer: TextTokenizer,
  outFile: string,
  onProgress?: (progress: TokenizeProgress) => void,
): number {
  const dtype = dtypeForVocabulary(tokenizer.vocabSize);
  const width = DTYPE_BYTES[dtype];
  const bytesTotal = files.reduce((sum, file) => sum + statSync(file).size, 0);
  const partial = `${outFile}.partial-${process.pid}`;
  const output = openSync(partial, 'w');
  let bytesRead = 0;
  let tokens = 0;
  const decoder = new TextDecoder('utf-8', { fatal: false });
  try {
    for (const file of files) {
      const input = openSync(file, 'r');
      try {
        const chunk = Buffer.alloc(CHUNK_BYTES);
        let carry = Buffer.alloc(0);
        let position = 0;
        for (;;) {
          const read = readSync(input, chunk, 0, CHUNK_BYTES, position);
          position += read;
          bytesRead += read;
          const data = Buffer.concat([carry, chunk.subarray(0, read)]);
          const cut = read === 0 ? data.length : data.lastIndexOf(0x0a) + 1;
          const text = decoder.decode(data.subarray(0, cut > 0 ? cut : data.length));
          carry = cut > 0 ? Buffer.from(data.subarray(cut)) : Buffer.alloc(0);
          if (text.length > 0) {
            const ids = tokenizer.encode(text);
            const encoded = Buffer.alloc(ids.length * width);
            for (let index = 0; index < ids.length; index++) {
              const id = ids[index] as number;
              if (width === 1) encoded[index] = id;
              else if (width === 2) encoded.writeUInt16LE(id, index * 2);
              else encoded.writeUInt32LE(id, index * 4);
            }
            writeSync(output, encoded);
            tokens += ids.length;
          }
          onProgress?.({ bytesRead, bytesTotal, tokens });
          if (read === 0) break;
        }
      } finally {
        closeSync(input);
      }
    }
  } finally {
    closeSync(output);
  }
  renameSync(partial, outFile);
  return tokens;
}

/**
 * The shard training reads for one input file: a `.bin` as it is; text as its own bytes for the
 * byte tokenizer; otherwise a cached tokenization in `cacheDirectory`, named by the file's
 * path, size, modification time and the tokenizer, so an edited file is tokenized again.
 */
export function shardForInput(
  file: string,
  tokenizer: TextTokenizer,
  options: { dtype: TokenDtype; cacheDirectory: string; log?: (line: string) => void },
): TokenShard {
  if (isShardFile(file)) return shardOf(file, options.dtype);
  if (tokenizer.name === 'byte') return shardOf(file, 'uint8');
  const stats = statSync(file);
  const key = createHash('sha256')
    .update(`${file}\0${stats.size}\0${stats.mtimeMs}\0${tokenizer.name}\0${tokenizer.vocabSize}`)
    .digest('hex')
    .slice(0, 16);
  const dtype = dtypeForVocabulary(tokenizer.vocabSize);
  const cached = join(options.cacheDirectory, `${basename(file)}.${tokenizer.name}.${key}.bin`);
  if (!existsSync(cached)) {
    mkdirSync(options.cacheDirectory, { recursive: true });
    const tokens = tokenizeFiles([file], tokenizer, cached);
    options.log?.(`tokenized ${file} with ${tokenizer.name}: ${tokens} tokens → ${cached}`);
  }
  return shardOf(cached, dtype);
}
