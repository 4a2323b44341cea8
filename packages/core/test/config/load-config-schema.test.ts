import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError } from '../../src/config/config-error.js';
import { loadConfig } from '../../src/config/load-config.js';
import { coreConfigSections } from '../../src/config/schema.js';
import { caught, expectOneLine, writeFixtures } from './fixtures.js';

/**
 * The file schema is the caller's: here core's sections and one section of the test's own, as
 * @interleave/train composes core's sections with train, tracking and sweep.
 */
const schema = z.strictObject({
  ...coreConfigSections,
  data: z.strictObject({ path: z.string().min(1), shards: z.number().int().positive().default(1) }),
});

const TEXT = `name: own-sections
model:
  vocab_size: 32
  d_model: 8
  layers:
    - { block: mamba }
task: { name: mqar }
data:
  path: ./tokens.bin
`;

async function load(text: string, overrides: string[] = []) {
  const dir = await writeFixtures({ 'exp.yaml': text });
  const file = join(dir, 'exp.yaml');
  return { file, load: () => loadConfig(schema, file, overrides) };
}

describe('loadConfig with the schema its caller composes', () => {
  it("validates core's sections and the caller's, with both sets of defaults", async () => {
    const loaded = await (await load(TEXT)).load();
    expect(loaded.config.data).toEqual({ path: './tokens.bin', shards: 1 });
    expect(loaded.config.backend).toBe('auto');
    expect(loaded.config.plugins).toEqual([]);
  });

  it("lists the caller's sections among the allowed keys", async () => {
    const { file, load: loading } = await load(`${TEXT}train: { steps: 3 }\n`);
    expect(expectOneLine(await caught(loading))).toBe(
      `${file}:10:1: train: unknown key 'train' (allowed keys: name, seed, backend, model, task, plugins, evals, data)`,
    );
  });

  it("reports a mistake in the caller's section with its line, column and a suggestion", async () => {
    const { file, load: loading } = await load(TEXT.replace('  path: ./tokens.bin', '  paht: ./tokens.bin'));
    const error = await caught(loading);
    expect(error).toBeInstanceOf(ConfigError);
    expect(expectOneLine(error)).toBe(`${file}:9:3: data.paht: unknown key 'paht'; did you mean 'path'?`);
    const { load: overridden } = await load(TEXT, ['data.shards=0']);
    expect(expectOneLine(await caught(overridden))).toBe('--set data.shards=0: data.shards: must be > 0 (got 0)');
  });

  it('still refuses a repeat that would build an absurd number of layers', async () => {
    const { file, load: loading } = await load(
      TEXT.replace('    - { block: mamba }', '    - { repeat: 100000000, pattern: [{ block: mamba }] }'),
    );
    expect(expectOneLine(await caught(loading))).toBe(
      `${file}:6:17: model.layers[0].repeat: the layers expand to more than 10000 layers`,
    );
  });
});
