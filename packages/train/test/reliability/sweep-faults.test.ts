import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findRunsWithTag, readMetricHistory } from '@interleave/core';
import { describe, expect, it } from 'vitest';
import {
  exited,
  finishedPerTrial,
  interleaveAsync,
  killGroup,
  TINY_GRID,
  trialRuns,
  waitFor,
  workspace,
} from '../sweep-support.js';

describe('local sweeps under faults', () => {
  it('two local sweeps of the same file at once finish each trial exactly once, between them', async () => {
    const dir = workspace({ 'sweep.yaml': TINY_GRID });
    const first = interleaveAsync(['sweep', 'sweep.yaml', '--workers', '1'], dir);
    const second = interleaveAsync(['sweep', 'sweep.yaml', '--workers', '1'], dir);
    const codes = [await exited(first), await exited(second)];
    expect(codes, `${first.output()}\n${second.output()}`).toEqual([0, 0]);

    const runs = await trialRuns(dir);
    const perTrial = finishedPerTrial(runs);
    expect(perTrial.size).toBe(12);
    expect([...perTrial.values()].every((count) => count === 1)).toBe(true);
    // Claimed before they start, so no trial was even trained twice.
    expect(runs).toHaveLength(12);
    const ranByFirst = (first.output().match(/^trial \d+\/12 FINISHED/gm) ?? []).length;
    const ranBySecond = (second.output().match(/^trial \d+\/12 FINISHED/gm) ?? []).length;
    expect(ranByFirst + ranBySecond).toBe(12);
    console.log(`concurrent local sweeps: ${ranByFirst} + ${ranBySecond} of 12 trials, each FINISHED once`);
    expect(readdirSync(join(dir, 'mlruns')).filter((name) => name.startsWith('.claim-'))).toEqual([]);
  }, 300_000);

  it('a trial killed mid-way resumes from its last checkpoint when the sweep runs again', async () => {
    const steps = 30;
    const sweep = TINY_GRID.replace('steps: 3', `steps: ${steps}\n  checkpoint_every: 5`).replace(
      /parameters:[\s\S]*$/,
      'parameters:\n    seed: [1]\n',
    );
    const dir = workspace({ 'sweep.yaml': sweep });
    const first = interleaveAsync(['sweep', 'sweep.yaml', '--workers', '1'], dir);
    const checkpointStep = await waitFor('a checkpoint past step 5', async () => {
      const [run] = await trialRuns(dir);
      if (run === undefined) return undefined;
      const state = join(fileURLToPath(run.artifactUri), 'checkpoint', 'trainer.json');
      if (!existsSync(state)) return undefined;
      const step = (JSON.parse(readFileSync(state, 'utf8')) as { step: number }).step;
      return step >= 10 && step < steps ? step : undefined;
    });
    killGroup(first);
    await exited(first);
    const [killed] = await trialRuns(dir);
    expect(killed?.status).toBe('RUNNING');

    const second = interleaveAsync(['sweep', 'sweep.yaml', '--workers', '1'], dir);
    expect(await exited(second), second.output()).toBe(0);
    const runs = await trialRuns(dir);
    // The same run, continued: not a second run trained from step 1.
    expect(runs.map((run) => [run.runId, run.status])).toEqual([[killed!.runId, 'FINISHED']]);
    const [parent] = await findRunsWithTag(join(dir, 'mlruns'), 'sweep-test', 'interleave.sweep_role', 'parent');
    const logs = join(fileURLToPath(parent!.artifactUri), 'logs');
    const log = readdirSync(logs)
      .map((name) => readFileSync(join(logs, name), 'utf8'))
      .join('');
    const resumedFrom = Number(new RegExp(`resuming run ${killed!.runId} from step (\\d+)`).exec(log)?.[1]);
    expect(resumedFrom).toBeGreaterThanOrEqual(checkpointStep);
    const history = await readMetricHistory(join(dir, 'mlruns'), killed!.runId, 'train/loss');
    expect(history.map((point) => point.step)).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
    console.log(`killed sweep trial: resumed from the checkpoint at step ${resumedFrom}`);
  }, 300_000);
});
