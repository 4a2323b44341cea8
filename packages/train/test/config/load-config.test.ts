import { join } from 'node:path';
import { ConfigError, InterleaveError } from '@interleave/core';
import { describe, expect, it } from 'vitest';
import { loadExperimentConfig } from '../../src/config/experiment-config.js';
import { caught, expectOneLine, VALID_YAML, withLine, writeFixtures } from './experiment-fixtures.js';

async function load(text: string, overrides: string[] = []) {
  const dir = await writeFixtures({ 'exp.yaml': text });
  const file = join(dir, 'exp.yaml');
  return { file, loaded: () => loadExperimentConfig(file, overrides) };
}

/** Loads `text` and returns the one-line message of the error it must raise, and the file name. */
async function errorFor(text: string, overrides: string[] = []): Promise<{ file: string; message: string }> {
  const { file, loaded } = await load(text, overrides);
  const error = await caught(loaded);
  expect(error).toBeInstanceOf(ConfigError);
  return { file, message: expectOneLine(error) };
}

describe('loadExperimentConfig: a valid file', () => {
  it('validates, applies defaults, and keeps the resolved data without them', async () => {
    const { file, loaded } = await load(VALID_YAML);
    const config = await loaded();
    expect(config.file).toBe(file);
    expect(config.config.seed).toBe(0);
    expect(config.config.backend).toBe('auto');
    expect(config.config.train.optimizer).toEqual({
      name: 'adamw',
      lr: 0.001,
      weight_decay: 0.1,
      betas: [0.9, 0.98],
      eps: 1e-8,
    });
    expect(config.config.tracking).toEqual({ uri: './mlruns', experiment: 'Default' });
    expect(config.resolved).not.toHaveProperty('seed');
    expect(config.resolved.train).toEqual({ steps: 30, batch_size: 4, optimizer: { lr: 0.001, betas: [0.9, 0.98] } });
  });

  it('locates values, keys and missing keys', async () => {
    const { file, loaded } = await load(VALID_YAML);
    const config = await loaded();
    expect(config.locate(['train', 'steps'])).toEqual({ file, line: 12, column: 10 });
    expect(config.locate(['train', 'steps'], 'key')).toEqual({ file, line: 12, column: 3 });
    expect(config.locate(['model', 'layers', 0, 'pattern', 1, 'window'])).toEqual({ file, line: 9, column: 33 });
    // A block map points at its key's line; a missing key at its nearest existing parent.
    expect(config.locate(['train'])).toEqual({ file, line: 11, column: 1 });
    expect(config.locate(['train', 'schedule', 'decay'])).toEqual({ file, line: 11, column: 1 });
    expect(config.locate(['task', 'seq_len'])).toEqual({ file, line: 10, column: 30 });
  });

  it('accepts the sweep section of docs/design.md#config', async () => {
    const { loaded } = await load(
      `${VALID_YAML}sweep:\n  method: grid\n  parameters:\n    model.d_model: [8, 16]\n    train.optimizer.lr: [1.0e-3, 3.0e-3]\n`,
    );
    const config = await loaded();
    expect(config.config.sweep?.parameters['model.d_model']).toEqual([8, 16]);
  });
});

describe('loadExperimentConfig: errors name the file, the key path and line:column', () => {
  it('reports a misspelt nested key with a suggestion (and not the missing key it hides)', async () => {
    const { file, message } = await errorFor(withLine(12, '  stpes: 30'));
    expect(message).toBe(`${file}:12:3: train.stpes: unknown key 'stpes'; did you mean 'steps'?`);
  });

  it('reports a misspelt top-level key', async () => {
    const { file, message } = await errorFor(withLine(1, 'nmae: test'));
    expect(message).toBe(`${file}:1:1: nmae: unknown key 'nmae'; did you mean 'name'?`);
  });

  it('lists the allowed keys when nothing is close', async () => {
    const { file, message } = await errorFor(`${VALID_YAML}colour: red\n`);
    expect(message).toBe(
      `${file}:15:1: colour: unknown key 'colour' (allowed keys: name, seed, backend, model, task, train, tracking, plugins, evals, sweep)`,
    );
  });

  it('reports a wrong type with the value found', async () => {
    const { file, message } = await errorFor(withLine(12, '  steps: abc'));
    expect(message).toBe(`${file}:12:10: train.steps: expected number, got string ('abc')`);
    const fractional = await errorFor(withLine(12, '  steps: 2.5'));
    expect(fractional.message).toBe(`${fractional.file}:12:10: train.steps: expected integer, got number (2.5)`);
    const nullable = await errorFor(`${withLine(13, '  batch_size: 4\n  grad_clip: yes')}`);
    expect(nullable.message).toBe(
      `${nullable.file}:14:14: train.grad_clip: expected number or null, got string ('yes')`,
    );
  });

  it('points a missing required key at its parent', async () => {
    const { file, message } = await errorFor(withLine(13, '  # batch_size: 4'));
    expect(message).toBe(`${file}:11:1: train.batch_size: missing required key 'batch_size' (expected number)`);
    const top = await errorFor(withLine(1, '# name: test'));
    expect(top.message).toBe(`${top.file}:2:1: name: missing required key 'name' (expected string)`);
  });

  it('lists the allowed values of an enum', async () => {
    const { file, message } = await errorFor(`${VALID_YAML}backend: gpu\n`);
    expect(message).toBe(
      `${file}:15:10: backend: must be one of 'auto', 'tensorflow', 'webgpu', 'wasm', 'cpu' (got 'gpu'); did you mean 'cpu'?`,
    );
    const decay = await errorFor(`${VALID_YAML}  schedule: { decay: cosin }\n`);
    expect(decay.message).toBe(
      `${decay.file}:15:22: train.schedule.decay: must be one of 'cosine', 'constant', 'linear' (got 'cosin'); did you mean 'cosine'?`,
    );
    const checkpointing = await errorFor(`${VALID_YAML}  activation_checkpointing: layer\n`);
    expect(checkpointing.message).toBe(
      `${checkpointing.file}:15:29: train.activation_checkpointing: must be one of 'none', 'layers' (got 'layer'); did you mean 'layers'?`,
    );
  });

  it('explains bounds', async () => {
    const betas = await errorFor(withLine(14, '  optimizer: { lr: 1.0e-3, betas: [0.9] }'));
    expect(betas.message).toBe(`${betas.file}:14:35: train.optimizer.betas: needs exactly 2 items (got 1)`);
    const lr = await errorFor(withLine(14, '  optimizer: { lr: -1 }'));
    expect(lr.message).toBe(`${lr.file}:14:20: train.optimizer.lr: must be > 0 (got -1)`);
    const name = await errorFor(withLine(1, "name: ''"));
    expect(name.message).toBe(`${name.file}:1:7: name: must not be empty`);
  });

  it('reports layer entries by their place in repeat/pattern', async () => {
    const noBlock = await errorFor(withLine(8, '        - { blok: mamba }'));
    expect(noBlock.message).toBe(
      `${noBlock.file}:8:11: model.layers[0].pattern[0].block: missing required key 'block' (expected string)`,
    );
    const pattern = await errorFor(withLine(7, '      patern:'));
    expect(pattern.message).toBe(
      `${pattern.file}:7:7: model.layers[0].patern: unknown key 'patern'; did you mean 'pattern'?`,
    );
    const scalar = await errorFor(withLine(8, '        - mamba'));
    expect(scalar.message).toBe(`${scalar.file}:8:11: model.layers[0].pattern[0]: expected map, got string ('mamba')`);
    const mlp = await errorFor(withLine(9, '        - { block: swa, window: 4, mlp: { expansion: big } }'));
    expect(mlp.message).toBe(
      `${mlp.file}:9:54: model.layers[0].pattern[1].mlp.expansion: expected number, got string ('big')`,
    );
  });

  it('checks the sweep section', async () => {
    const random = await errorFor(`${VALID_YAML}sweep:\n  method: random\n  parameters: { seed: [1, 2] }\n`);
    expect(random.message).toBe(`${random.file}:15:1: sweep.trials: method 'random' needs 'trials' (how many to draw)`);
    const typo = await errorFor(`${VALID_YAML}sweep:\n  methd: grid\n  parameters: { seed: [1, 2] }\n`);
    expect(typo.message).toBe(`${typo.file}:16:3: sweep.methd: unknown key 'methd'; did you mean 'method'?`);
  });

  it('refuses a repeat that would build an absurd number of layers', async () => {
    const { file, message } = await errorFor(withLine(6, '    - repeat: 100000000'));
    expect(message).toBe(`${file}:6:15: model.layers[0].repeat: the layers expand to more than 10000 layers`);
  });

  it('reports the first problem in document order', async () => {
    const text = withLine(3, '  vocab_size: many').replace('  steps: 30', '  steps: abc');
    const { file, message } = await errorFor(text);
    expect(message).toBe(`${file}:3:15: model.vocab_size: expected number, got string ('many')`);
  });
});

describe('loadExperimentConfig: files', () => {
  it('reports a missing file in one line', async () => {
    const dir = await writeFixtures({});
    const file = join(dir, 'nope.yaml');
    const error = await caught(() => loadExperimentConfig(file));
    expect(error).toBeInstanceOf(InterleaveError);
    expect(expectOneLine(error)).toBe(`config file not found: ${file}`);
  });

  it('refuses an empty file and a file that is not a map', async () => {
    const empty = await errorFor('# nothing here\n');
    expect(empty.message).toBe(`${empty.file}: (top level): the file is empty; a config is a YAML map of keys`);
    const list = await errorFor('- a\n- b\n');
    expect(list.message).toBe(`${list.file}:1:1: (top level): a config must be a YAML map of keys, not a list`);
  });
});

describe('loadExperimentConfig: bad YAML', () => {
  it('reports an unclosed bracket where it opens', async () => {
    const { file, message } = await errorFor(withLine(12, '  steps: [30'));
    expect(message).toBe(`${file}:12:10: train.steps: YAML syntax error: '[' is never closed with ']'`);
  });

  it('reports bad indentation with its line', async () => {
    const { file, message } = await errorFor(withLine(13, ' batch_size: 4'));
    expect(message).toBe(
      `${file}:13:1: (top level): YAML syntax error: All mapping items must start at the same column (check the indentation of this line and the lines around it)`,
    );
    const deeper = await errorFor(withLine(13, '     batch_size: 4'));
    expect(deeper.message).toMatch(
      new RegExp(`^${deeper.file}:12:10: train\\.steps: YAML syntax error: .*indentation`),
    );
  });

  it('reports tabs used as indentation', async () => {
    const { file, message } = await errorFor(withLine(13, '\tbatch_size: 4'));
    expect(message).toBe(`${file}:13:1: (top level): YAML syntax error: Tabs are not allowed as indentation`);
  });

  it('reports duplicate keys in its own words', async () => {
    const { file, message } = await errorFor(withLine(13, '  steps: 40'));
    expect(message).toBe(`${file}:13:3: train.steps: duplicate key 'steps' (first defined at line 12:3)`);
  });

  it('refuses several documents in one file', async () => {
    const { file, message } = await errorFor(`${VALID_YAML}---\nname: other\n`);
    expect(message).toBe(
      `${file}:15:1: (top level): YAML syntax error: a config file holds one YAML document (remove the '---' separator)`,
    );
  });
});
