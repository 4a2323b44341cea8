import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { LanguageModel } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { trainFromConfig } from '../src/run/train-run.js';

/** A two-layer pure-Mamba model (no MLP): what MambaLMHeadModel can hold. */
export const PURE_MAMBA_CONFIG = `name: export-check
seed: 11
backend: wasm
model:
  vocab_size: 32
  d_model: 16
  layers:
    - repeat: 2
      pattern:
        - { block: mamba, d_state: 4 }
task: { name: mqar, seq_len: 16, num_kv_pairs: 2, test_examples: 8 }
train:
  steps: 3
  batch_size: 4
  optimizer: { name: adamw, lr: 1.0e-2 }
tracking: { uri: ./mlruns, experiment: export }
`;

const quiet = { write: () => true, isTTY: false };

export function temporaryDirectory(): string {
  return mkdtempSync(join(tmpdir(), 'interleave-export-'));
}

/** Trains `config` for its few steps in a fresh folder; returns the MLflow run folder. */
export async function trainTinyRun(config: string, directory = temporaryDirectory()): Promise<string> {
  const file = join(directory, 'config.yaml');
  writeFileSync(file, config);
  const result = await trainFromConfig({
    configFile: file,
    overrides: [`tracking.uri=${join(directory, 'mlruns')}`],
    output: quiet,
  });
  return dirname(result.artifactLocation);
}

/** Fixed token batch [2, 12] over a vocabulary of 32. */
export const TOKENS = Array.from({ length: 2 }, (_, row) =>
  Array.from({ length: 12 }, (_, column) => (row * 7 + column * 5 + column * column) % 32),
);

export function logitsOf(model: LanguageModel, tokens: number[][] = TOKENS): Float32Array {
  return tf.tidy(() => model.forward(tf.tensor2d(tokens, undefined, 'int32')).dataSync() as Float32Array);
}

export function parameterShapes(model: LanguageModel): Record<string, number[]> {
  return Object.fromEntries(model.parameters.list().map(({ name, variable }) => [name, [...variable.shape]]));
}

export function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs((a[i] as number) - (b[i] as number)));
  return max;
}
