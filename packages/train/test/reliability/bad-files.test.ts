import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findRuns, InterleaveError, readSafetensorsFile } from '@interleave/core';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadModelFromCheckpoint } from '../../src/checkpoint/load-model.js';
import { trainFromConfig } from '../../src/run/train-run.js';
import { expectOneCleanLine, interleave, quiet, scratchDirectory, tinyConfig } from './support.js';

let dir: string;
let goodWeights: Uint8Array;

/** A copy of the trained weights file, changed by `edit`, as `<name>/model.safetensors`. */
function badWeights(name: string, edit: (bytes: Uint8Array) => Uint8Array): string {
  const folder = join(dir, name);
  mkdirSync(folder, { recursive: true });
  const file = join(folder, 'model.safetensors');
  writeFileSync(file, edit(goodWeights.slice()));
  return file;
}

function withHeaderLength(bytes: Uint8Array, length: bigint): Uint8Array {
  new DataView(bytes.buffer, bytes.byteOffset).setBigUint64(0, length, true);
  return bytes;
}

/** The header JSON of a weights file, edited by `edit` and written back with its new length. */
function withHeader(bytes: Uint8Array, edit: (header: Record<string, unknown>) => void): Uint8Array {
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length))) as Record<string, unknown>;
  edit(header);
  const text = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + text.length + (bytes.length - 8 - length));
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  out.set(bytes.subarray(8 + length), 8 + text.length);
  return out;
}

const CASES: Array<{ name: string; edit: (bytes: Uint8Array) => Uint8Array; message: RegExp }> = [
  {
    name: 'truncated',
    edit: (bytes) => bytes.subarray(0, Math.floor(bytes.length / 2)),
    message: /has data_offsets \[\d+, \d+\] past the end of the \d+-byte data section \(truncated file\?\)/,
  },
  {
    name: 'zero-length',
    edit: () => new Uint8Array(0),
    message: /0 bytes is too short to hold the 8-byte header length/,
  },
  {
    name: 'not-safetensors',
    edit: () => new TextEncoder().encode('name: this is a YAML file, not weights\n'),
    message: /header length \d+ is more than the \d+ bytes that follow it/,
  },
  {
    name: 'header-past-the-end',
    edit: (bytes) => withHeaderLength(bytes, BigInt(bytes.length)),
    message: /header length \d+ is more than the \d+ bytes that follow it \(truncated, or not a safetensors file\)/,
  },
  {
    name: 'huge-header-length',
    edit: (bytes) => withHeaderLength(bytes, 2n ** 63n),
    message: /header length 9223372036854775808 is more than the \d+ bytes that follow it/,
  },
  {
    name: 'tensor-past-the-end',
    edit: (bytes) =>
      withHeader(bytes, (header) => {
        const [name] = Object.keys(header).filter((key) => key !== '__metadata__');
        const entry = header[name as string] as { shape: number[]; data_offsets: number[] };
        // A billion-element tensor: the reader must compare with the file before allocating it.
        entry.shape = [1_000_000_000];
        entry.data_offsets = [0, 4_000_000_000];
      }),
    message: /tensor "[^"]+"/,
  },
];

describe('bad weights files', () => {
  beforeAll(async () => {
    dir = scratchDirectory('bad-files', { 'config.yaml': tinyConfig('bad-files', 2) });
    await trainFromConfig({
      configFile: join(dir, 'config.yaml'),
      overrides: [`tracking.uri=${join(dir, 'mlruns')}`],
      output: quiet,
    });
    const [run] = await findRuns(join(dir, 'mlruns'), 'bad-files');
    const weights = join(fileURLToPath(run!.artifactUri), 'checkpoint', 'model.safetensors');
    goodWeights = new Uint8Array(readFileSync(weights));
    copyFileSync(weights, join(dir, 'good.safetensors'));
  });

  it('loads the untouched file (the cases below differ from it only in the edit)', async () => {
    const { model } = await loadModelFromCheckpoint(join(dir, 'good.safetensors'));
    model.dispose();
  });

  for (const { name, edit, message } of CASES) {
    it(`refuses a ${name} model.safetensors with one line naming the file`, async () => {
      const file = badWeights(name, edit);
      const error = await readSafetensorsFile(file).then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      expect(error).toBeInstanceOf(InterleaveError);
      const text = (error as Error).message;
      expect(text.split('\n')).toHaveLength(1);
      expect(text).toContain(file);
      expect(text).toMatch(message);
      // The same file through the model loader every command uses.
      await expect(loadModelFromCheckpoint(join(dir, name))).rejects.toThrow(text);
      expect(statSync(file).size).toBeLessThan(goodWeights.length * 2);
    });
  }

  it('refuses each bad file through `interleave generate` and `interleave export` with one line', () => {
    for (const { name, message } of CASES) {
      const file = join(dir, name, 'model.safetensors');
      const generated = interleave(['generate', file, '--prompt-tokens', '1,2,3', '--max-new', '2'], dir);
      expect(generated.status).toBe(1);
      expectOneCleanLine(generated.stderr, `invalid safetensors file ${file}`, message);
    }
    const file = join(dir, 'truncated', 'model.safetensors');
    const exported = interleave(['export', file, '--out', join(dir, 'out.safetensors')], dir);
    expect(exported.status).toBe(1);
    expectOneCleanLine(exported.stderr, `invalid safetensors file ${file}`);
  });

  it('refuses to resume a run with the checkpoint of another config, naming both hashes', () => {
    const other = join(dir, 'other.yaml');
    writeFileSync(other, tinyConfig('bad-files', 2).replace('lr: 3.0e-3', 'lr: 1.0e-2'));
    const interrupted = interleave(['train', join(dir, 'config.yaml'), '--set', 'train.steps=3'], dir);
    expect(interrupted.status).toBe(0);
    const runId = /run: ([0-9a-f]{32})/.exec(interrupted.stdout)?.[1] as string;
    const resumed = interleave(['train', other, '--set', 'train.steps=3', '--resume', runId], dir);
    expect(resumed.status).toBe(1);
    expectOneCleanLine(
      resumed.stderr,
      new RegExp(`run ${runId} was trained with another config \\(hash [0-9a-f]+, this one is [0-9a-f]+\\)`),
    );
  });
});
