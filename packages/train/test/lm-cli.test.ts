import { spawnSync } from 'node:child_process';
import {
  closeSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const CLI = resolve(import.meta.dirname, '../bin/interleave.mjs');
const FIXTURES = resolve(import.meta.dirname, '../../eval/test/fixtures/lm');
// Larger than the V8 heap the child may use (--max-old-space-size below) and than the resident
// memory it is allowed to reach: reading the corpus whole would show in either.
const CORPUS_MB = 400;
const HEAP_LIMIT_MB = 128;

const workspace = mkdtempSync(join(tmpdir(), 'interleave-lm-'));
afterAll(() => rmSync(workspace, { recursive: true, force: true }));

function interleave(args: string[], nodeOptions = '') {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    cwd: workspace,
    encoding: 'utf8',
    env: { ...process.env, INTERLEAVE_BACKEND: 'wasm', NODE_OPTIONS: nodeOptions },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Repeats the Tempest excerpts to `megabytes` of text, written a chunk at a time. */
function writeLargeCorpus(file: string, megabytes: number): void {
  const text = Buffer.concat(
    readdirSync(FIXTURES)
      .filter((name) => name.endsWith('.txt'))
      .map((name) => readFileSync(join(FIXTURES, name))),
  );
  const chunk = Buffer.alloc(1 << 20);
  for (let offset = 0; offset < chunk.length; offset += text.length) text.copy(chunk, offset);
  const descriptor = openSync(file, 'w');
  try {
    for (let written = 0; written < megabytes; written++) writeSync(descriptor, chunk);
  } finally {
    closeSync(descriptor);
  }
}

const CONFIG = (data: string) => `name: lm-tiny
seed: 1
model:
  vocab_size: 256
  d_model: 16
  layers:
    - { block: mamba, d_state: 4 }
    - { block: swa, window: 8, heads: 2 }
task: { name: lm, data: ${data}, seq_len: 32, document_tokens: 1048576, validation_tokens: 256 }
train:
  steps: 3
  batch_size: 4
  optimizer: { name: adamw, lr: 1.0e-3 }
  log_every: 1
tracking: { uri: ./mlruns, experiment: lm-cli }
`;

describe('lm on the command line', () => {
  it(`trains on a ${CORPUS_MB} MB corpus with a ${HEAP_LIMIT_MB} MB heap, then generates text from a prompt`, () => {
    const corpus = join(workspace, 'big.txt');
    writeLargeCorpus(corpus, CORPUS_MB);
    expect(statSync(corpus).size).toBe(CORPUS_MB << 20);
    const config = join(workspace, 'lm-tiny.yaml');
    writeFileSync(config, CONFIG(corpus));
    // Printed on exit by a preloaded module: the child's peak resident memory.
    const reportPeakMemory = join(workspace, 'peak-memory.mjs');
    writeFileSync(
      reportPeakMemory,
      'process.on("exit", () => process.stderr.write("max_rss_kb " + process.resourceUsage().maxRSS + "\\n"));\n',
    );
    const train = interleave(['train', config], `--max-old-space-size=${HEAP_LIMIT_MB} --import=${reportPeakMemory}`);
    expect(train.stderr).toContain('max_rss_kb');
    expect(train.status, train.stderr).toBe(0);
    expect(train.stdout).toContain('step 3/3');
    expect(train.stdout).toMatch(/bits\/byte/);
    const peakKilobytes = Number(/max_rss_kb (\d+)/.exec(train.stderr)?.[1]);
    process.stdout.write(`peak resident memory ${Math.round(peakKilobytes / 1024)} MB for a ${CORPUS_MB} MB corpus\n`);
    expect(peakKilobytes * 1024).toBeLessThan(statSync(corpus).size);

    const run = /run: ([0-9a-f]{32})/.exec(train.stdout)?.[1] as string;
    const experiment = readdirSync(join(workspace, 'mlruns')).find((name) => name !== '0' && !name.startsWith('.'));
    const runFolder = join(workspace, 'mlruns', experiment as string, run);
    const generated = interleave(['generate', runFolder, '--prompt', 'FERDINAND.', '--max-new', '20']);
    expect(generated.status, generated.stderr).toBe(0);
    // The byte tokenizer decodes the prompt back exactly, followed by the generated text.
    expect(generated.stdout.startsWith('FERDINAND.')).toBe(true);
    expect(Buffer.byteLength(generated.stdout)).toBeGreaterThanOrEqual('FERDINAND.'.length + 1);

    const notText = interleave(['generate', runFolder, '--prompt', 'x', '--prompt-tokens', '1,2']);
    expect(notText.status).not.toBe(0);
    expect(notText.stderr.trim().split('\n')).toHaveLength(1);
    expect(notText.stderr).toContain(
      'give the prompt as text (--prompt, --prompt-file) or as --prompt-tokens, not both',
    );
  });

  it('a bpe run saves its tokenizer.json, and generate decodes through it', () => {
    const config = join(workspace, 'bpe.yaml');
    writeFileSync(
      config,
      CONFIG(FIXTURES)
        .replace('vocab_size: 256', 'vocab_size: 320')
        .replace('document_tokens: 1048576', 'document_tokens: 512, tokenizer: bpe, cache_dir: bpe-cache')
        .replace('steps: 3', 'steps: 2'),
    );
    const train = interleave(['train', config]);
    expect(train.status, train.stderr).toBe(0);
    const run = /run: ([0-9a-f]{32})/.exec(train.stdout)?.[1] as string;
    const experiment = readdirSync(join(workspace, 'mlruns')).find((name) => name !== '0' && !name.startsWith('.'));
    const artifacts = join(workspace, 'mlruns', experiment as string, run, 'artifacts');
    const saved = JSON.parse(readFileSync(join(artifacts, 'tokenizer.json'), 'utf8'));
    expect(Object.keys(saved.model.vocab)).toHaveLength(320);
    const generated = interleave([
      'generate',
      join(artifacts, '..'),
      '--prompt',
      'Where should this music be?',
      '--max-new',
      '8',
    ]);
    expect(generated.status, generated.stderr).toBe(0);
    expect(generated.stdout.startsWith('Where should this music be?')).toBe(true);
  });

  it('names a missing corpus at its line in the config', () => {
    const config = join(workspace, 'missing.yaml');
    writeFileSync(config, CONFIG('no/such/corpus'));
    const result = interleave(['train', config]);
    expect(result.status).not.toBe(0);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain(
      `${config}:9:25: task.data: no file or folder ${join(workspace, 'no/such/corpus')}`,
    );
  });

  it('tokenize writes a gpt2 shard and reports tokens/s', () => {
    const out = join(workspace, 'tempest.bin');
    const result = interleave(['tokenize', FIXTURES, '--tokenizer', 'gpt2', '--out', out]);
    expect(result.status, result.stderr).toBe(0);
    const tokens = Number(/(\d+) gpt2 tokens \(uint16\) from 2 file\(s\)/.exec(result.stdout)?.[1]);
    expect(statSync(out).size).toBe(tokens * 2);
    expect(result.stdout).toMatch(/\d+ tokens\/s/);
    expect(result.stderr).toMatch(/tokenize 100\.0%/);
  });
});
