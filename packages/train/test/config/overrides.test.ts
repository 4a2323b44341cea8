import { join } from 'node:path';
import { ConfigError } from '@interleave/core';
import { describe, expect, it } from 'vitest';
import { loadExperimentConfig } from '../../src/config/experiment-config.js';
import { caught, expectOneLine, VALID_YAML, writeFixtures } from './experiment-fixtures.js';

async function loadWith(overrides: string[]) {
  const dir = await writeFixtures({ 'exp.yaml': VALID_YAML });
  const file = join(dir, 'exp.yaml');
  return { file, load: () => loadExperimentConfig(file, overrides) };
}

describe('loadExperimentConfig with overrides', () => {
  it('applies typed values in order, the last one winning', async () => {
    const { load } = await loadWith([
      'train.steps=50',
      'train.grad_clip=null',
      'model.tie_embeddings=false',
      'train.optimizer.betas=[0.8, 0.9]',
      'task.extra={a: 1}',
      'name=renamed',
      'seed=1',
      'seed=2',
    ]);
    const loaded = await load();
    expect(loaded.config.train.steps).toBe(50);
    expect(loaded.config.train.grad_clip).toBeNull();
    expect(loaded.config.model.tie_embeddings).toBe(false);
    expect(loaded.config.train.optimizer.betas).toEqual([0.8, 0.9]);
    expect(loaded.config.task).toEqual({ name: 'mqar', seq_len: 32, extra: { a: 1 } });
    expect(loaded.config.name).toBe('renamed');
    expect(loaded.config.seed).toBe(2);
    expect(loaded.resolved.seed).toBe(2);
  });

  it('sets list items by index, in both spellings', async () => {
    for (const text of ['model.layers[0].pattern[1].window=32', 'model.layers.0.pattern.1.window=32']) {
      const { file, load } = await loadWith([text]);
      const loaded = await load();
      const pattern = (loaded.config.model.layers[0] as { pattern: Array<Record<string, unknown>> }).pattern;
      expect(pattern[1]?.window).toBe(32);
      expect(pattern[1]?.block).toBe('swa');
      expect(loaded.locate(['model', 'layers', 0, 'pattern', 1, 'window'])).toEqual({ file: `--set ${text}` });
      expect(loaded.locate(['model', 'layers', 0, 'pattern', 1, 'block'])).toEqual({ file, line: 9, column: 20 });
    }
  });

  it('locates overridden values at the override, and the rest in the file', async () => {
    const { file, load } = await loadWith(['train.steps=50']);
    const loaded = await load();
    expect(loaded.locate(['train', 'steps'])).toEqual({ file: '--set train.steps=50' });
    expect(loaded.locate(['train'])).toEqual({ file, line: 11, column: 1 });
    expect(loaded.locate(['train', 'batch_size'])).toEqual({ file, line: 13, column: 15 });
  });

  it("reports a bad value at '--set ...'", async () => {
    const { load } = await loadWith(['train.steps=abc']);
    const error = await caught(load);
    expect(error).toBeInstanceOf(ConfigError);
    expect(expectOneLine(error)).toBe("--set train.steps=abc: train.steps: expected number, got string ('abc')");
  });

  it("reports an unknown key that an override creates at '--set ...'", async () => {
    const { load } = await loadWith(['train.optimizer.lrr=0.1']);
    const error = await caught(load);
    expect(expectOneLine(error)).toBe(
      "--set train.optimizer.lrr=0.1: train.optimizer.lrr: unknown key 'lrr' (allowed keys: name, lr, weight_decay, betas, eps)",
    );
    const nested = await loadWith(['train.shedule.decay=linear']);
    expect(expectOneLine(await caught(nested.load))).toBe(
      "--set train.shedule.decay=linear: train.shedule: unknown key 'shedule'; did you mean 'schedule'?",
    );
  });

  it('refuses an index past the end of a list, and keys inside a scalar', async () => {
    const range = await loadWith(['model.layers[3].window=1']);
    expect(expectOneLine(await caught(range.load))).toBe(
      "--set model.layers[3].window=1: model.layers[3]: list index 3 is out of range ('model.layers' has 1 items)",
    );
    const scalar = await loadWith(['train.steps.x=1']);
    expect(expectOneLine(await caught(scalar.load))).toBe(
      "--set train.steps.x=1: train.steps: cannot set a key inside 'train.steps': it is a number, not a map or list",
    );
  });

  it('names a malformed override before reading anything else', async () => {
    const { load } = await loadWith(['train.steps']);
    expect(expectOneLine(await caught(load))).toBe("invalid override 'train.steps': expected key.path=value");
  });
});
