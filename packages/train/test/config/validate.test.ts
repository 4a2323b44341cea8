import { join } from 'node:path';
import { ConfigError, expandLayers } from '@interleave/core';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadExperimentConfig } from '../../src/config/experiment-config.js';
import { caught, expectOneLine, VALID_YAML, withLine, writeFixtures } from './experiment-fixtures.js';

/** What a block would register for its own keys. */
const mambaSchema = z.strictObject({
  d_state: z.number().int().positive(),
  d_conv: z.number().int().positive().default(4),
  dt_min: z.number().positive().default(0.001),
});

const taskSchema = z.strictObject({
  seq_len: z.number().int().positive(),
  num_kv_pairs: z.number().int().positive().default(8),
});

async function load(text: string, overrides: string[] = []) {
  const dir = await writeFixtures({ 'exp.yaml': text });
  const file = join(dir, 'exp.yaml');
  return { file, loaded: await loadExperimentConfig(file, overrides) };
}

/** Validates the first expanded layer's own keys, the way model assembly does. */
function validateFirstLayer(loaded: Awaited<ReturnType<typeof loadExperimentConfig>>) {
  const [first] = expandLayers(loaded.config.model.layers);
  if (first === undefined) throw new Error('no layers');
  const { block: _block, mlp: _mlp, ...keys } = first.entry;
  return loaded.validate(mambaSchema, keys, first.path);
}

describe('LoadedConfig.validate on a sub-tree', () => {
  it('returns the parsed value with the schema defaults', async () => {
    const { loaded } = await load(VALID_YAML);
    expect(validateFirstLayer(loaded)).toEqual({ d_state: 8, d_conv: 4, dt_min: 0.001 });
    const { name: _name, ...taskKeys } = loaded.config.task;
    expect(loaded.validate(taskSchema, taskKeys, ['task'])).toEqual({ seq_len: 32, num_kv_pairs: 8 });
  });

  it("reports a block's wrong value at its line and column", async () => {
    const { file, loaded } = await load(withLine(8, '        - { block: mamba, d_state: big }'));
    const error = await caught(() => validateFirstLayer(loaded));
    expect(error).toBeInstanceOf(ConfigError);
    expect(expectOneLine(error)).toBe(
      `${file}:8:36: model.layers[0].pattern[0].d_state: expected number, got string ('big')`,
    );
  });

  it("reports a block's unknown key at the key, with a suggestion", async () => {
    const { file, loaded } = await load(withLine(8, '        - { block: mamba, d_stat: 8 }'));
    const error = await caught(() => validateFirstLayer(loaded));
    expect(expectOneLine(error)).toBe(
      `${file}:8:27: model.layers[0].pattern[0].d_stat: unknown key 'd_stat'; did you mean 'd_state'?`,
    );
  });

  it("reports a block's missing key at the layer entry", async () => {
    const { file, loaded } = await load(withLine(8, '        - { block: mamba }'));
    const error = await caught(() => validateFirstLayer(loaded));
    expect(expectOneLine(error)).toBe(
      `${file}:8:11: model.layers[0].pattern[0].d_state: missing required key 'd_state' (expected number)`,
    );
  });

  it("reports a task's wrong key in a flow map", async () => {
    const { file, loaded } = await load(withLine(10, 'task: { name: mqar, seq_len: 32, kv_pairs: 4 }'));
    const { name: _name, ...taskKeys } = loaded.config.task;
    const error = await caught(() => loaded.validate(taskSchema, taskKeys, ['task']));
    expect(expectOneLine(error)).toBe(
      `${file}:10:34: task.kv_pairs: unknown key 'kv_pairs' (allowed keys: seq_len, num_kv_pairs)`,
    );
  });

  it('reports a value set by an override at the override', async () => {
    const { loaded } = await load(VALID_YAML, ['model.layers[0].pattern[0].d_state=-2']);
    const error = await caught(() => validateFirstLayer(loaded));
    expect(expectOneLine(error)).toBe(
      '--set model.layers[0].pattern[0].d_state=-2: model.layers[0].pattern[0].d_state: must be > 0 (got -2)',
    );
  });
});
