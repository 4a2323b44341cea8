import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findRuns, SeededRandom } from '@interleave/core';
import { describe, expect, it } from 'vitest';
import { CLI, scratchDirectory, tinyConfig } from './support.js';

const STEPS = 40;
const CHECKPOINT_EVERY = 4;
const KILLS = 3;
/** Wall-clock metrics differ between any two runs; every other metric must match exactly. */
const TIMED_METRICS = new Set(['train/tokens_per_second']);

interface TrainProcess {
  runId: string | undefined;
  lastStep: number;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Runs `interleave train` in `cwd`; with `killAfterStep`, SIGKILLs it as soon as it reports
 * that step (it may get a little further before the signal lands: where exactly is up to the
 * machine, which is the point).
 */
function train(cwd: string, args: string[], killAfterStep?: number): Promise<TrainProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'train', 'config.yaml', ...args], { cwd });
    const state: TrainProcess = { runId: undefined, lastStep: 0, code: null, signal: null };
    let pending = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.stdout.on('data', (chunk: Buffer) => {
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
function metricsOf(runDirectory: string): Map<string, Array<[number, number]>> {
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

/** Kill points drawn by seed: increasing, each past the checkpoint the previous resume starts from. */
function killSteps(seed: number): number[] {
  const rng = new SeededRandom(seed, 'kill-loop');
  const steps: number[] = [];
  let after = CHECKPOINT_EVERY + 1;
  for (let kill = 0; kill < KILLS; kill++) {
    const room = Math.floor((STEPS - 4 - after) / (KILLS - kill));
    const step = after + rng.int(Math.max(1, room));
    steps.push(step);
    after = step + CHECKPOINT_EVERY + 1;
  }
  return steps;
}

describe('SIGKILL at random steps, resumed each time', () => {
  it('ends with the uninterrupted run: the same values at every step, each step logged once, FINISHED once', async () => {
    const dir = scratchDirectory('kill-loop', {
      'config.yaml': tinyConfig('kill-loop', STEPS, `  checkpoint_every: ${CHECKPOINT_EVERY}\n`),
    });
    const straight = await train(dir, ['--set', 'tracking.experiment=straight']);
    expect(straight.code).toBe(0);

    const kills = killSteps(17);
    let runId: string | undefined;
    const killedAt: number[] = [];
    for (const step of kills) {
      const killed = await train(dir, runId === undefined ? [] : ['--resume', runId], step);
      expect(killed.signal).toBe('SIGKILL');
      runId ??= killed.runId;
      expect(killed.runId).toBe(runId);
      killedAt.push(killed.lastStep);
    }
    const last = await train(dir, ['--resume', runId as string]);
    expect(last.code).toBe(0);
    console.log(`kill loop: killed at steps ${killedAt.join(', ')} (targets ${kills.join(', ')}), then finished`);

    const [reference] = await findRuns(join(dir, 'mlruns'), 'straight');
    const runs = await findRuns(join(dir, 'mlruns'), 'kill-loop');
    expect(runs.map((run) => [run.runId, run.status])).toEqual([[runId, 'FINISHED']]);
    const expected = metricsOf(runFolder(reference!));
    const survived = metricsOf(runFolder(runs[0]!));
    expect([...survived.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [key, points] of expected) {
      const resumed = survived.get(key) ?? [];
      // Exactly once per step: no step lost to a kill, none logged again by a resume.
      expect(
        resumed.map(([step]) => step),
        key,
      ).toEqual(points.map(([step]) => step));
      if (!TIMED_METRICS.has(key)) expect(resumed, key).toEqual(points);
    }
    expect(survived.get('train/loss')?.map(([step]) => step)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
  });
});

/** The run's folder in the file store: its artifact folder's parent. */
function runFolder(run: { artifactUri: string }): string {
  return dirname(fileURLToPath(run.artifactUri));
}
