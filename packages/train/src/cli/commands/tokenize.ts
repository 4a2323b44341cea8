import { statSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { InterleaveError, registryOf } from '@interleave/core';
import {
  createTokenizer,
  dtypeForVocabulary,
  resolveCorpusFiles,
  TOKENIZERS,
  type TokenizeProgress,
  tokenizeFiles,
} from '@interleave/eval';
import { createRunContainer } from '../../run/prepare-run.js';
import { type Command, parseCommandLine } from '../command.js';

// The progress line is redrawn at most this often: more would cost more than it tells.
const PROGRESS_INTERVAL_MS = 500;

export const tokenizeCommand: Command = {
  name: 'tokenize',
  usage: `  tokenize <file|folder|glob>... --tokenizer NAME --out FILE.bin
      pre-tokenize text into one flat shard of token ids (uint16 when the vocabulary fits, else
      uint32), for task: { name: lm, data: FILE.bin, dtype: ... }; streams, so any size works
      --tokenizer NAME   byte, gpt2, bpe (trained on the inputs) or a plugin's (default byte)
      --vocab-size N     the tokens a bpe learns (default 4096; use it as model.vocab_size)
      --out FILE.bin     the shard to write`,
  async run(args) {
    const { values, positionals } = parseCommandLine(args, {
      tokenizer: { type: 'string', default: 'byte' },
      out: { type: 'string' },
      'vocab-size': { type: 'string', default: '4096' },
    });
    const vocabSize = Number(values['vocab-size']);
    if (!Number.isInteger(vocabSize) || vocabSize < 1) {
      throw new InterleaveError(`--vocab-size '${values['vocab-size']}' is not a positive integer`);
    }
    if (positionals.length === 0)
      throw new InterleaveError('tokenize needs at least one input: a file, folder or glob');
    if (values.out === undefined) throw new InterleaveError('--out FILE.bin is required');
    if (!values.out.endsWith('.bin'))
      throw new InterleaveError(`--out ${values.out}: the shard's name must end in .bin`);
    const container = await createRunContainer([], () => ({ file: '--tokenizer' }));
    const files = positionals.flatMap((input) => resolveCorpusFiles(input));
    const tokenizer = createTokenizer(registryOf(container, TOKENIZERS), values.tokenizer as string, {
      corpusFiles: files,
      cacheDirectory: resolve('.interleave-cache'),
      vocabSize,
    });
    const started = performance.now();
    let lastDrawn = 0;
    const draw = (progress: TokenizeProgress, final: boolean) => {
      const now = performance.now();
      if (!final && now - lastDrawn < PROGRESS_INTERVAL_MS) return;
      lastDrawn = now;
      const seconds = Math.max((now - started) / 1000, 1e-3);
      const percent = progress.bytesTotal === 0 ? 100 : (100 * progress.bytesRead) / progress.bytesTotal;
      const line =
        `tokenize ${percent.toFixed(1).padStart(5)}%  ${(progress.bytesRead / 1e6).toFixed(1)}/${(progress.bytesTotal / 1e6).toFixed(1)} MB  ` +
        `${progress.tokens} tokens  ${Math.round(progress.tokens / seconds)} tokens/s`;
      process.stderr.write(process.stderr.isTTY ? `\r${line}${final ? '\n' : ''}` : `${line}\n`);
    };
    if (tokenizer.saved !== undefined) {
      // The shard's ids mean nothing without the tokenizer learned for it.
      writeFileSync(`${values.out.slice(0, -'.bin'.length)}.tokenizer.json`, tokenizer.saved);
    }
    const tokens = tokenizeFiles(files, tokenizer, values.out, (progress) => draw(progress, false));
    const bytes = files.reduce((sum, file) => sum + statSync(file).size, 0);
    draw({ bytesRead: bytes, bytesTotal: bytes, tokens }, true);
    const seconds = (performance.now() - started) / 1000;
    process.stdout.write(
      `${values.out}: ${tokens} ${tokenizer.name} tokens (${dtypeForVocabulary(tokenizer.vocabSize)}) from ${files.length} file(s), ` +
        `${(bytes / 1e6).toFixed(1)} MB in ${seconds.toFixed(1)} s, ${Math.round(tokens / Math.max(seconds, 1e-3))} tokens/s\n`,
    );
    return 0;
  },
};
