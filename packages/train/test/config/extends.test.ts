import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '@interleave/core';
import { describe, expect, it } from 'vitest';
import { loadExperimentConfig } from '../../src/config/experiment-config.js';
import { caught, expectOneLine, VALID_YAML, withLine, writeFixtures } from './experiment-fixtures.js';

const CHILD = `extends: ../base.yaml
name: child
model:
  layers:
    - { block: swa, window: 8 }
train:
  steps: 100
  optimizer: { lr: 3.0e-3 }
`;

describe('extends', () => {
  it('deep-merges maps, replaces lists and scalars, and drops the extends key', async () => {
    const dir = await writeFixtures({ 'base.yaml': VALID_YAML });
    await mkdir(join(dir, 'exps'));
    await writeFile(join(dir, 'exps', 'child.yaml'), CHILD);
    const loaded = await loadExperimentConfig(join(dir, 'exps', 'child.yaml'));

    expect(loaded.resolved).not.toHaveProperty('extends');
    expect(loaded.config.name).toBe('child');
    expect(loaded.config.model.vocab_size).toBe(64);
    expect(loaded.resolved.model).toEqual({ vocab_size: 64, d_model: 16, layers: [{ block: 'swa', window: 8 }] });
    // The base's betas survive: optimizer is a map, merged key by key.
    expect(loaded.resolved.train).toEqual({
      steps: 100,
      batch_size: 4,
      optimizer: { lr: 0.003, betas: [0.9, 0.98] },
    });

    const base = join(dir, 'base.yaml');
    const child = join(dir, 'exps', 'child.yaml');
    expect(loaded.locate(['train', 'steps'])).toEqual({ file: child, line: 7, column: 10 });
    expect(loaded.locate(['train', 'batch_size'])).toEqual({ file: base, line: 13, column: 15 });
    expect(loaded.locate(['train', 'optimizer', 'betas'])).toEqual({
      file: base,
      line: 14,
      column: 35,
    });
    // The child's list replaced the base's, so its items are located in the child only.
    expect(loaded.locate(['model', 'layers', 0, 'window'])).toEqual({ file: child, line: 5, column: 29 });
    expect(loaded.locate(['model', 'layers', 0, 'pattern'])).toEqual({ file: child, line: 5, column: 7 });
  });

  it('follows a chain of bases', async () => {
    const dir = await writeFixtures({
      'a.yaml': 'extends: b.yaml\nname: a\n',
      'b.yaml': 'extends: c.yaml\ntrain: { steps: 7 }\n',
      'c.yaml': VALID_YAML,
    });
    const loaded = await loadExperimentConfig(join(dir, 'a.yaml'));
    expect(loaded.config.name).toBe('a');
    expect(loaded.config.train.steps).toBe(7);
    expect(loaded.config.train.batch_size).toBe(4);
    expect(loaded.locate(['train', 'steps'])).toEqual({ file: join(dir, 'b.yaml'), line: 2, column: 17 });
    expect(loaded.locate(['model', 'd_model'])).toEqual({ file: join(dir, 'c.yaml'), line: 4, column: 12 });
  });

  it('detects a cycle', async () => {
    const dir = await writeFixtures({
      'a.yaml': 'extends: b.yaml\nname: a\n',
      'b.yaml': '# b\nextends: a.yaml\n',
    });
    const error = await caught(() => loadExperimentConfig(join(dir, 'a.yaml')));
    expect(error).toBeInstanceOf(ConfigError);
    const a = join(dir, 'a.yaml');
    const b = join(dir, 'b.yaml');
    expect(expectOneLine(error)).toBe(`${b}:2:10: extends: 'extends' forms a cycle: ${a} -> ${b} -> ${a}`);
  });

  it('detects a file that extends itself', async () => {
    const dir = await writeFixtures({ 'a.yaml': 'extends: ./a.yaml\n' });
    const a = join(dir, 'a.yaml');
    const error = await caught(() => loadExperimentConfig(a));
    expect(expectOneLine(error)).toBe(`${a}:1:10: extends: 'extends' forms a cycle: ${a} -> ${a}`);
  });

  it('locates an error in the base file when the bad key is there', async () => {
    const dir = await writeFixtures({
      'base.yaml': withLine(12, '  stpes: 30'),
      'child.yaml': 'extends: base.yaml\ntrain:\n  steps: 5\n',
    });
    const error = await caught(() => loadExperimentConfig(join(dir, 'child.yaml')));
    expect(expectOneLine(error)).toBe(
      `${join(dir, 'base.yaml')}:12:3: train.stpes: unknown key 'stpes' (allowed keys: steps, batch_size, optimizer, schedule, grad_clip, eval_every, checkpoint_every, log_every, metrics_every, activation_checkpointing, step_replay, head_rows, batch_worker, batch_threads)`,
    );
  });

  it('locates a wrong value in the child that overrides a good base', async () => {
    const dir = await writeFixtures({
      'base.yaml': VALID_YAML,
      'child.yaml': 'extends: base.yaml\ntrain:\n  batch_size: lots\n',
    });
    const error = await caught(() => loadExperimentConfig(join(dir, 'child.yaml')));
    expect(expectOneLine(error)).toBe(
      `${join(dir, 'child.yaml')}:3:15: train.batch_size: expected number, got string ('lots')`,
    );
  });

  it('reports a missing base file at the extends line', async () => {
    const dir = await writeFixtures({ 'child.yaml': 'name: x\nextends: missing.yaml\n' });
    const error = await caught(() => loadExperimentConfig(join(dir, 'child.yaml')));
    expect(expectOneLine(error)).toBe(
      `${join(dir, 'child.yaml')}:2:10: extends: base config file not found: ${join(dir, 'missing.yaml')}`,
    );
  });

  it('requires extends to be one path', async () => {
    const dir = await writeFixtures({ 'child.yaml': 'extends: [a.yaml, b.yaml]\n' });
    const error = await caught(() => loadExperimentConfig(join(dir, 'child.yaml')));
    expect(expectOneLine(error)).toBe(
      `${join(dir, 'child.yaml')}:1:10: extends: 'extends' must be the path of one base config file (relative to this file)`,
    );
  });

  it('keeps paths relative when the file was given relative', async () => {
    const dir = await writeFixtures({
      'base.yaml': withLine(12, '  steps: abc'),
      'child.yaml': 'extends: base.yaml\n',
    });
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const error = await caught(() => loadExperimentConfig('child.yaml'));
      expect(expectOneLine(error)).toBe(`base.yaml:12:10: train.steps: expected number, got string ('abc')`);
    } finally {
      process.chdir(cwd);
    }
  });
});
