import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLI } from './support.js';

/** Wall-clock metrics differ between any two runs; every other metric must match exactly. */
export const TIMED_METRICS = new Set(['train/tokens_per_second']);

export interface TrainProcess {
  runId: string | undefined;
  lastStep: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Everything it printed on stdout. */
  stdout: string;
}

/**
 * Runs `interleave train` in `cwd`; with `killAfterStep`, SIGKILLs it as soon as it reports
 * that step (it may get a little further before the signal lands: where exactly is up to the
 * machine, which is the point).
 */
export function trainProcess(cwd: string, args: string[], killAfterStep?: number): Promise<TrainProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'train', 'config.yaml', ...args], { cwd });
    const state: TrainProcess = { runId: undefined, lastStep: 0, code: null, signal: null, stdout: '' };
    let pending = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout.on('data', (chunk: Buffer) => {
      state.stdout += chunk.toString();
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        state.runId ??= /^run: ([0-9a-f]{32})/.exec(line)?.[1];
        const step = /^step (\d+)\//.exec(line);
        if (step) state.lastStep = Number(step[1]);
        if (killAfterStep !== undefined && state.lastStep >= killAfterStep) child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (killAfterStep === undefined && code !== 0) reject(new Error(`train exited ${code}: ${stderr}`));
      resolve({ ...state, code, signal });
    });
  });
}

/** Every metric of a run: key → the steps it was logged at and the values, in file order. */
export function metricsOf(runDirectory: string): Map<string, Array<[number, number]>> {
  const root = join(runDirectory, 'metrics');
  const out = new Map<string, Array<[number, number]>>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else {
        const points = readFileSync(path, 'utf8')
          .trim()
          .split('\n')
          .map((line) => line.split(' '))
          .map(([, value, step]) => [Number(step), Number(value)] as [number, number]);
        out.set(relative(root, path), points);
      }
    }
  };
  walk(root);
  return out;
}

/** The run's folder in the file store: its artifact folder's parent. */
export function runFolder(run: { artifactUri: string }): string {
  return dirname(fileURLToPath(run.artifactUri));
}
