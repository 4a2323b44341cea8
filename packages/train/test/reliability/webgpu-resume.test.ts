import { join } from 'node:path';
import { findRuns } from '@interleave/core';
import { describe, expect, it } from 'vitest';
import { scratchDirectory, tinyConfig } from './support.js';
import { metricsOf, runFolder, TIMED_METRICS, trainProcess as train } from './train-process.js';

/**
 * Resuming a webgpu run whose steps were replayed (train.step_replay: auto) from a checkpoint that
 * was not its first. tfjs answers a read from a CPU copy kept since the last read, and a replay
 * writes the GPU buffers behind it, so before each replay dropped those copies every checkpoint
 * after the first held the first one's weights and moments: a resume went back to them with the
 * later step count, and its losses left the uninterrupted run's at the first step after it.
 */
const STEPS = 16;
const CHECKPOINT_EVERY = 4;
const KILL_AFTER = 10; // past the second checkpoint (step 8), with replays since the first (step 4)

describe('a webgpu run with replayed steps, killed and resumed (software device)', () => {
  it('resumes from the weights of its last checkpoint and ends with the uninterrupted run’s losses', async () => {
    const config = tinyConfig('webgpu-resume', STEPS, `  checkpoint_every: ${CHECKPOINT_EVERY}\n`).replace(
      'backend: wasm',
      'backend: webgpu',
    );
    const dir = scratchDirectory('webgpu-resume', { 'config.yaml': config });
    const straight = await train(dir, ['--set', 'tracking.experiment=straight']);
    expect(straight.code).toBe(0);
    expect(straight.stdout).toMatch(/step replay: replaying \(\d+ dispatches/);

    const killed = await train(dir, [], KILL_AFTER);
    expect(killed.signal).toBe('SIGKILL');
    expect(killed.lastStep).toBeGreaterThanOrEqual(KILL_AFTER);
    const resumed = await train(dir, ['--resume', killed.runId as string]);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/step replay: replaying \(\d+ dispatches/);

    const [reference] = await findRuns(join(dir, 'mlruns'), 'straight');
    const [run] = await findRuns(join(dir, 'mlruns'), 'webgpu-resume');
    const expected = metricsOf(runFolder(reference!));
    const survived = metricsOf(runFolder(run!));
    for (const [key, points] of expected) {
      if (!TIMED_METRICS.has(key)) expect(survived.get(key), key).toEqual(points);
    }
    expect(survived.get('train/loss')?.map(([step]) => step)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
  });
});
