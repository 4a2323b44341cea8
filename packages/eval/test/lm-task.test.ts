import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NamedRegistry } from '@interleave/core';
import { describe, expect, it } from 'vitest';
import {
  BUILTIN_TOKENIZERS,
  bpeTokenizer,
  byteTokenizer,
  gpt2Tokenizer,
  languageModelMetrics,
  lmSchema,
  lmTask,
  readTokens,
  resolveCorpusFiles,
  shardOf,
  type TokenizerDefinition,
  tokenizeFiles,
} from '../src/index.js';

const fixtures = fileURLToPath(new URL('./fixtures/lm', import.meta.url));
const act1 = join(fixtures, 'tempest-act1.txt');
// byte and gpt2 learn nothing from the corpus.
const NO_CORPUS = { corpusFiles: [], cacheDirectory: tmpdir(), vocabSize: 50257 };

function tokenizers(): NamedRegistry<TokenizerDefinition> {
  const registry = new NamedRegistry<TokenizerDefinition>('tokenizer');
  for (const tokenizer of BUILTIN_TOKENIZERS) registry.register(tokenizer);
  return registry;
}

function makeTask(keys: Record<string, unknown>, seed = 1, vocabSize = 256) {
  const config = lmSchema.parse({ data: fixtures, document_tokens: 512, seq_len: 32, ...keys });
  return lmTask(tokenizers()).create(config, { vocabSize, seed });
}

describe('tokenizers', () => {
  it('byte and gpt2 round-trip text, and count its UTF-8 bytes', () => {
    const text = readFileSync(act1, 'utf8');
    for (const definition of [byteTokenizer, gpt2Tokenizer]) {
      const tokenizer = definition.create(NO_CORPUS);
      const ids = tokenizer.encode(text);
      expect(tokenizer.decode(ids)).toBe(text);
      expect(tokenizer.byteLength(ids)).toBe(Buffer.byteLength(text));
    }
    // GPT-2's BPE packs English into far fewer tokens than bytes.
    expect(gpt2Tokenizer.create(NO_CORPUS).encode(text).length).toBeLessThan(Buffer.byteLength(text) / 3);
    expect(gpt2Tokenizer.create(NO_CORPUS).encode('Hello world')).toEqual([15496, 995]);
  });
});

describe('bpe', () => {
  it('learns model.vocab_size tokens from the corpus, encodes any text, and is saved with the run', () => {
    const cacheDirectory = mkdtempSync(join(tmpdir(), 'lm-bpe-'));
    const files = resolveCorpusFiles(fixtures);
    const tokenizer = bpeTokenizer.create({ corpusFiles: files, cacheDirectory, vocabSize: 512 });
    expect(tokenizer.vocabSize).toBe(512);
    const text = readFileSync(act1, 'utf8');
    const ids = tokenizer.encode(text);
    expect(tokenizer.decode(ids)).toBe(text);
    expect(Math.max(...ids)).toBeLessThan(512);
    // Merges learned from the text: far fewer tokens than bytes.
    expect(ids.length).toBeLessThan(Buffer.byteLength(text) / 2);
    // Bytes it never saw still encode (the 256 byte symbols are all in the vocabulary).
    const unseen = 'Ωμέγα — ✓';
    expect(tokenizer.decode(tokenizer.encode(unseen))).toBe(unseen);
    expect(tokenizer.byteLength(tokenizer.encode(unseen))).toBe(Buffer.byteLength(unseen));
    // Training is deterministic: a fresh cache learns the same tokenizer.
    const again = bpeTokenizer.create({
      corpusFiles: files,
      cacheDirectory: mkdtempSync(join(tmpdir(), 'lm-bpe-')),
      vocabSize: 512,
    });
    expect(again.saved).toBe(tokenizer.saved);
    const task = makeTask({ tokenizer: 'bpe', cache_dir: cacheDirectory, document_tokens: 256, seq_len: 16 }, 1, 512);
    expect(task.artifacts?.['tokenizer.json']).toBe(tokenizer.saved);
    const saved = join(cacheDirectory, 'saved.json');
    writeFileSync(saved, tokenizer.saved as string);
    expect(
      bpeTokenizer.create({ corpusFiles: [], cacheDirectory, vocabSize: 512, savedFile: saved }).encode(text),
    ).toEqual(ids);
  });
});

describe('lm task', () => {
  it('splits by document: training never reads validation text, and all test positions count', () => {
    const task = makeTask({});
    const testTexts = new Set(
      task.testBatches(4).flatMap((batch) => {
        const rows: string[] = [];
        for (let row = 0; row < batch.batchSize; row++) {
          rows.push(Buffer.from(batch.inputs.subarray(row * 32, row * 32 + 32)).toString('latin1'));
        }
        return rows;
      }),
    );
    expect(testTexts.size).toBeGreaterThan(0);
    for (let index = 0; index < 20; index++) {
      const batch = task.trainBatch(index, 4);
      expect([...batch.mask].every((value) => value === 1)).toBe(true);
      for (let row = 0; row < 4; row++) {
        const inputs = batch.inputs.subarray(row * 32, row * 32 + 32);
        // Targets are the inputs shifted by one.
        expect([...batch.targets.subarray(row * 32, row * 32 + 31)]).toEqual([...inputs.subarray(1)]);
        expect(testTexts.has(Buffer.from(inputs).toString('latin1'))).toBe(false);
      }
    }
    // The byte tokenizer predicts one byte per token.
    const tokens = task.testBatches(4).reduce((sum, batch) => sum + batch.inputs.length, 0);
    expect(task.evaluationBytes).toBe(tokens);
  });

  it('is deterministic in (seed, batch index), visits every window once per epoch, and reshuffles per seed', () => {
    const first = makeTask({});
    const again = makeTask({});
    expect([...again.trainBatch(7, 4).inputs]).toEqual([...first.trainBatch(7, 4).inputs]);
    const other = makeTask({}, 2);
    expect([...other.trainBatch(0, 4).inputs]).not.toEqual([...first.trainBatch(0, 4).inputs]);
    const windows = (first as unknown as { trainWindows: number }).trainWindows;
    const seen = new Set<string>();
    for (let index = 0; index < windows; index++) {
      seen.add(Buffer.from(first.trainBatch(index, 1).inputs).toString('latin1'));
    }
    expect(seen.size).toBe(windows);
  });

  it('reads gpt2 tokens from a tokenized cache and pre-tokenized .bin shards alike', () => {
    const cache = mkdtempSync(join(tmpdir(), 'lm-cache-'));
    const fromText = makeTask({ tokenizer: 'gpt2', cache_dir: cache, document_tokens: 128, seq_len: 16 }, 1, 50257);
    const shardFolder = mkdtempSync(join(tmpdir(), 'lm-shards-'));
    const tokens = tokenizeFiles(
      resolveCorpusFiles(fixtures),
      gpt2Tokenizer.create(NO_CORPUS),
      join(shardFolder, 'all.bin'),
    );
    const shard = shardOf(join(shardFolder, 'all.bin'), 'uint16');
    expect(shard.tokens).toBe(tokens);
    const head = new Int32Array(2);
    readTokens(shard, 0, 2, head);
    const firstFile = readFileSync(resolveCorpusFiles(fixtures)[0] as string, 'utf8');
    expect([...head]).toEqual(gpt2Tokenizer.create(NO_CORPUS).encode(firstFile).slice(0, 2));
    const fromShard = lmTask(tokenizers()).create(
      lmSchema.parse({ data: shardFolder, tokenizer: 'gpt2', document_tokens: 128, seq_len: 16 }),
      { vocabSize: 50257, seed: 1 },
    );
    // Different document boundaries (files vs one shard), the same kind of data: gpt2 ids.
    expect(Math.max(...fromShard.trainBatch(0, 8).inputs)).toBeLessThan(50257);
    expect(Math.max(...fromText.trainBatch(0, 8).inputs)).toBeGreaterThan(255);
    // gpt2 tokens stand for several bytes each.
    const testTokens = fromText.testBatches(8).reduce((sum, batch) => sum + batch.inputs.length, 0);
    expect(fromText.evaluationBytes).toBeGreaterThan(2 * testTokens);
  });

  it('fails with one line for a missing corpus, an unknown tokenizer, a too-small model, or a bad shard', () => {
    expect(() => makeTask({ data: '/nonexistent/corpus' })).toThrow('no file or folder /nonexistent/corpus');
    expect(() => makeTask({ tokenizer: 'nope' })).toThrow(/unknown tokenizer 'nope' \(one of: .*bpe.*\)/);
    expect(() => makeTask({ tokenizer: 'gpt2' }, 1, 256)).toThrow('more than model.vocab_size=256');
    const folder = mkdtempSync(join(tmpdir(), 'lm-bad-'));
    writeFileSync(join(folder, 'odd.bin'), Buffer.alloc(3));
    expect(() => makeTask({ data: folder })).toThrow('is not a whole number of uint16 tokens');
    writeFileSync(join(folder, 'odd.bin'), Buffer.alloc(4096, 0xff));
    expect(() => makeTask({ data: folder, dtype: 'uint16' })).toThrow('token 65535 at position 0 is not a byte token');
  });

  it('bits per byte divides total nats by ln 2 · bytes', () => {
    const metrics = languageModelMetrics(1000 * Math.LN2, 500, 2000);
    expect(metrics.bitsPerByte).toBeCloseTo(0.5, 12);
    expect(metrics.perplexity).toBeCloseTo(2 ** 2, 12);
  });
});
