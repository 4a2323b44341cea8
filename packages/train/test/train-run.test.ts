import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { configHash } from '@interleave/core';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { experimentConfigFromText, loadExperimentConfig } from '../src/config/experiment-config.js';
import { finalWeightsFile, trainFromConfig } from '../src/run/train-run.js';

const CONFIG = `name: run-stages
seed: 3
backend: wasm
model:
  vocab_size: 32
  d_model: 16
  layers:
    - { block: mamba, d_state: 4 }
    - { block: swa, window: 8, heads: 2 }
task: { name: mqar, seq_len: 16, num_kv_pairs: 2, test_examples: 8 }
train:
  steps: 5
  batch_size: 4
  checkpoint_every: 2
  optimizer: { name: adamw, lr: 3.0e-3 }
  schedule: { warmup_steps: 2 }
tracking: { uri: ./mlruns, experiment: stages }
`;

const quiet = { write: () => true, isTTY: false };

/** The `__metadata__` of a safetensors file, read straight from its JSON header. */
function safetensorsMetadata(file: string): Record<string, string> {
  const bytes = readFileSync(file);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8')) as {
    __metadata__?: Record<string, string>;
  };
  return header.__metadata__ ?? {};
}

function configFile(): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'interleave-run-'));
  const file = join(dir, 'config.yaml');
  writeFileSync(file, CONFIG);
  return { dir, file };
}

describe('a training run', () => {
  it('leaves final weights whose metadata records the last step, the config hash and the config', async () => {
    const { dir, file } = configFile();
    const overrides = [`tracking.uri=${join(dir, 'mlruns')}`];
    const result = await trainFromConfig({ configFile: file, overrides, output: quiet });
    expect(result.status).toBe('FINISHED');

    const loaded = await loadExperimentConfig(file, overrides);
    const metadata = safetensorsMetadata(finalWeightsFile(result.artifactLocation));
    expect(metadata.step).toBe('5');
    expect(metadata.config_hash).toBe(configHash(loaded.resolved));
    expect(JSON.parse(metadata['interleave.config'] ?? 'null')).toEqual(loaded.resolved);
    expect(metadata['interleave.config_file']).toBe(resolve(file));
    expect(JSON.parse(metadata['interleave.model'] ?? 'null')).toMatchObject({ d_model: 16, vocab_size: 32 });
    const state = JSON.parse(readFileSync(join(result.artifactLocation, 'checkpoint', 'trainer.json'), 'utf8'));
    expect(state.step).toBe(5);
  });

  it('trains from config data exactly as from the file it was read from', async () => {
    const { dir, file } = configFile();
    const overrides = [`tracking.uri=${join(dir, 'mlruns')}`];
    const fromFile = await trainFromConfig({ configFile: file, overrides, output: quiet });
    const data = experimentConfigFromText(
      stringify((await loadExperimentConfig(file, overrides)).resolved),
      'trial 1 (config data)',
    );
    const fromData = await trainFromConfig({ config: data, output: quiet });

    expect(fromData.losses).toEqual(fromFile.losses);
    expect(fromData.finalEval).toEqual(fromFile.finalEval);
    expect(fromData.runId).not.toBe(fromFile.runId);
    const metadata = safetensorsMetadata(finalWeightsFile(fromData.artifactLocation));
    expect(metadata.step).toBe('5');
    // Config data has no file: nothing names one (a temporary file least of all).
    expect(metadata['interleave.config_file']).toBeUndefined();
    expect(metadata.config_hash).toBe(configHash(data.resolved));
  });

  it('names the data label, key path and line of a bad value in config data', async () => {
    const text = CONFIG.replace('steps: 5', 'steps: -5');
    expect(() => experimentConfigFromText(text, 'trial 2 (config data)')).toThrow(
      /^trial 2 \(config data\):12:10: train\.steps: must be > 0 \(got -5\)$/,
    );
    const extending = `extends: base.yaml\n${CONFIG}`;
    expect(() => experimentConfigFromText(extending, 'trial 3')).toThrow(
      /^trial 3:1:10: extends: config data cannot 'extends'/,
    );
  });
});
