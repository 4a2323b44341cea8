import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { expect } from 'vitest';

export const CLI = resolve(import.meta.dirname, '../../bin/interleave.mjs');

/** A small hybrid that trains in well under a second a step on the CPU backends. */
export function tinyConfig(name: string, steps: number, extra = ''): string {
  return `name: ${name}
seed: 5
backend: wasm
model:
  vocab_size: 32
  d_model: 16
  layers:
    - { block: mamba, d_state: 4 }
    - { block: swa, window: 8, heads: 2, mlp: { expansion: 2 } }
task: { name: mqar, seq_len: 16, num_kv_pairs: 2, test_examples: 8 }
train:
  steps: ${steps}
  batch_size: 4
  optimizer: { name: adamw, lr: 3.0e-3 }
  schedule: { warmup_steps: 2 }
  log_every: 1
${extra}tracking: { uri: ./mlruns, experiment: ${name} }
`;
}

export const quiet = { write: () => true, isTTY: false };

export function scratchDirectory(prefix: string, files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), `interleave-${prefix}-`));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

export function interleave(args: string[], cwd: string, env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, [CLI, ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, INTERLEAVE_BACKEND: 'cpu', ...env },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** One line on stderr that names the problem, and nothing that looks like a stack trace. */
export function expectOneCleanLine(stderr: string, ...fragments: Array<string | RegExp>): string {
  const lines = stderr.trim().split('\n');
  expect(lines, stderr).toHaveLength(1);
  const [line] = lines as [string];
  expect(line).toMatch(/^interleave: /);
  expect(line).not.toMatch(/internal error/);
  for (const fragment of fragments) {
    if (typeof fragment === 'string') expect(line).toContain(fragment);
    else expect(line).toMatch(fragment);
  }
  expect(stderr).not.toMatch(/^\s+at /m);
  return line;
}
