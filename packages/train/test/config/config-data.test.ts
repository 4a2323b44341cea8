import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { configHash, readConfigFiles } from '@interleave/core';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  experimentConfigFromText,
  loadExperimentConfig,
  resolveExperimentConfig,
} from '../../src/config/experiment-config.js';
import { caught, expectOneLine, VALID_YAML, writeFixtures } from './experiment-fixtures.js';

describe('resolveExperimentConfig: config files read once', () => {
  it('resolves the same files with different overrides, each as loadConfig would, without reading them again', async () => {
    const dir = await writeFixtures({ 'exp.yaml': VALID_YAML });
    const file = join(dir, 'exp.yaml');
    const files = await readConfigFiles(file);
    // Changing the file after it was read changes nothing: the data is what was read.
    await writeFile(file, VALID_YAML.replace('steps: 30', 'steps: 99'));
    const first = resolveExperimentConfig(files, ['train.steps=5']);
    const second = resolveExperimentConfig(files, ['train.optimizer.betas=[0.8, 0.9]']);
    expect(first.config.train.steps).toBe(5);
    expect(second.config.train.steps).toBe(30);
    expect(second.config.train.optimizer.betas).toEqual([0.8, 0.9]);
    expect(first.config.train.optimizer.betas).toEqual([0.9, 0.98]);
    expect(first.label).toBe(file);
    expect(first.file).toBe(file);
    const error = await caught(() => resolveExperimentConfig(files, ['train.steps=-1']));
    expect(expectOneLine(error)).toBe('--set train.steps=-1: train.steps: must be > 0 (got -1)');
    const fromFile = await loadExperimentConfig(file, ['train.steps=5']);
    expect(fromFile.config.train.steps).toBe(5);
  });
});

describe('experimentConfigFromText: config data', () => {
  it('validates YAML text as a file, with no file behind it', async () => {
    const dir = await writeFixtures({ 'exp.yaml': VALID_YAML });
    const fromFile = await loadExperimentConfig(join(dir, 'exp.yaml'));
    const data = experimentConfigFromText(stringify(fromFile.resolved), 'trial 4');
    expect(data.file).toBeUndefined();
    expect(data.label).toBe('trial 4');
    expect(data.config).toEqual(fromFile.config);
    expect(configHash(data.resolved)).toBe(configHash(fromFile.resolved));
  });

  it('locates problems in the text under its label', async () => {
    expect(
      expectOneLine(await caught(() => experimentConfigFromText('name: x\nseed: 1\nseed: 2\n', 'queued trial'))),
    ).toBe("queued trial:3:1: seed: duplicate key 'seed' (first defined at line 2:1)");
    expect(expectOneLine(await caught(() => experimentConfigFromText('- a\n', 'queued trial')))).toBe(
      'queued trial:1:1: (top level): a config must be a YAML map of keys, not a list',
    );
  });
});
