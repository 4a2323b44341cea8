import { join } from 'node:path';
import { findRuns, SeededRandom } from '@interleave/core';
import { describe, expect, it } from 'vitest';
import { scratchDirectory, tinyConfig } from './support.js';
import { metricsOf, runFolder, TIMED_METRICS, trainProcess as train } from './train-process.js';

const STEPS = 40;
const CHECKPOINT_EVERY = 4;
const KILLS = 3;

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
