import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { findRunsWithTag, type RunRecord } from '@interleave/core';

/** The CLI under test (INTERLEAVE_TEST_CLI may point at another entry with the same commands). */
export const CLI = process.env.INTERLEAVE_TEST_CLI ?? resolve(import.meta.dirname, '../bin/interleave.mjs');

/** A 12-trial grid of tiny models (d_model 8–16, 16 tokens, 3 steps): each trial trains in about a second. */
export const TINY_GRID = `name: tiny-grid
seed: 1
backend: wasm
model:
  vocab_size: 32
  d_model: 8
  layers:
    - { block: mamba, d_state: 4 }
task: { name: mqar, seq_len: 16, num_kv_pairs: 2, test_examples: 16 }
train:
  steps: 3
  batch_size: 4
  optimizer: { name: adamw, lr: 1.0e-3 }
  log_every: 1
tracking: { uri: ./mlruns, experiment: sweep-test }
sweep:
  method: grid
  parameters:
    model.d_model: [8, 16]
    train.optimizer.lr: [1.0e-3, 3.0e-3, 1.0e-2]
    seed: [1, 2]
`;

export function workspace(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'interleave-sweep-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

export function interleaveSync(args: string[], cwd: string) {
  const result = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', env: cliEnvironment() });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A CLI process in its own process group, so that it can be killed together with its trial processes. */
export function interleaveAsync(args: string[], cwd: string): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd,
    env: cliEnvironment(),
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (text: string) => {
    output += text;
  });
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    output += text;
  });
  return Object.assign(child, { output: () => output });
}

/** SIGKILL for a process and everything in its group (its trial processes): a machine dying. */
export function killGroup(child: ChildProcess): void {
  try {
    process.kill(-(child.pid as number), 'SIGKILL');
  } catch {
    // Already gone.
  }
}

export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  { timeoutMs = 120_000, everyMs = 100 } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** The trial runs of the test experiment. */
export function trialRuns(dir: string): Promise<RunRecord[]> {
  return findRunsWithTag(join(dir, 'mlruns'), 'sweep-test', 'interleave.trial_id');
}

/** How many FINISHED runs each trial has. */
export function finishedPerTrial(runs: readonly RunRecord[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const run of runs) {
    const trial = run.tags['interleave.trial_id'] as string;
    counts.set(trial, (counts.get(trial) ?? 0) + (run.status === 'FINISHED' ? 1 : 0));
  }
  return counts;
}

/**
 * Every trial run's status code (1 RUNNING, 3 FINISHED, …) and the pid that writes it (its
 * `interleave.worker` tag), read straight from the store: cheap enough to poll every few ms.
 */
export function trialRunStates(dir: string): Array<{ runId: string; pid: number; status: number }> {
  const root = join(dir, 'mlruns');
  const found: Array<{ runId: string; pid: number; status: number }> = [];
  for (const experiment of safeList(root)) {
    for (const runId of safeList(join(root, experiment))) {
      try {
        const meta = readFileSync(join(root, experiment, runId, 'meta.yaml'), 'utf8');
        const status = Number(/^status: (\d)$/m.exec(meta)?.[1]);
        const owner = readFileSync(join(root, experiment, runId, 'tags', 'interleave.worker'), 'utf8');
        found.push({ runId, pid: Number(owner.slice(owner.lastIndexOf(':') + 1)), status });
      } catch {
        // Not a run, or not a trial's run (yet).
      }
    }
  }
  return found;
}

function safeList(directory: string): string[] {
  try {
    return readdirSync(directory);
  } catch {
    return [];
  }
}

/** The process group of `pid` (Linux): which worker a trial process belongs to. */
export function processGroupOf(pid: number): number | undefined {
  try {
    // /proc/<pid>/stat: "pid (comm) state ppid pgrp ..."; comm may contain spaces, so split after ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
  } catch {
    return undefined;
  }
}

function cliEnvironment(): NodeJS.ProcessEnv {
  return { ...process.env, INTERLEAVE_BACKEND: 'wasm' };
}
