import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis } from './redis-server.js';
import {
  exited,
  finishedPerTrial,
  interleaveAsync,
  interleaveSync,
  killGroup,
  processGroupOf,
  TINY_GRID,
  trialRunStates,
  trialRuns,
  waitFor,
  workspace,
} from './sweep-support.js';

describe('interleave sweep --queue with interleave worker processes (real Redis, BullMQ)', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('finishes every trial exactly once although a worker is SIGKILLed mid-trial', async () => {
    const dir = workspace({ 'sweep.yaml': TINY_GRID });
    // A queue of its own, so a shared Redis (INTERLEAVE_TEST_REDIS) holds nothing from other runs.
    const queue = ['--queue', redis.url, '--queue-name', `sweep-test-${process.pid}-${Date.now()}`];

    // Enqueuing is idempotent: job id = trial id.
    const enqueued = interleaveSync(['sweep', 'sweep.yaml', ...queue, '--detach'], dir);
    expect(enqueued.stderr).toBe('');
    expect(enqueued.stdout).toContain('12 trials added, 0 put back, 0 already queued');
    const again = interleaveSync(['sweep', 'sweep.yaml', ...queue, '--detach'], dir);
    expect(again.stdout).toContain('0 trials added, 0 put back, 12 already queued');
    expect(again.stdout).toContain('parent run: '); // the same parent, continued
    expect(again.stdout).toMatch(/\(continued\)/);

    const started = performance.now();
    const workers = [0, 1].map(() => interleaveAsync(['worker', ...queue, '--lock-ms', '3000'], dir));
    const follow = interleaveAsync(['sweep', 'sweep.yaml', ...queue, '--backoff-ms', '500'], dir);
    const [doomed, survivor] = workers as [(typeof workers)[0], (typeof workers)[0]];
    try {
      // Mid-sweep (some trials FINISHED) and mid-trial (the first worker's trial process has
      // its MLflow run open).
      const victim = await waitFor(
        'a trial running in the first worker',
        () => {
          const runs = trialRunStates(dir);
          if (runs.filter((run) => run.status === 3).length < 2) return undefined;
          return runs.find((run) => run.status === 1 && processGroupOf(run.pid) === doomed.pid);
        },
        { everyMs: 5 },
      );
      killGroup(doomed);
      await exited(doomed);
      const killedAt = (performance.now() - started) / 1000;
      const finishedAtKill = (await trialRuns(dir)).filter((run) => run.status === 'FINISHED').length;

      const code = await exited(follow);
      const seconds = (performance.now() - started) / 1000;
      expect(follow.output()).toContain('12/12 trials finished (12 in this session)');
      expect(code).toBe(0);

      const runs = await trialRuns(dir);
      const perTrial = finishedPerTrial(runs);
      expect(perTrial.size).toBe(12);
      expect([...perTrial.entries()].filter(([, count]) => count !== 1)).toEqual([]);
      // The killed worker's run was closed by the worker that took its trial over.
      const victimNow = runs.find((run) => run.runId === victim.runId);
      const victimTrialIndex = victimNow?.tags['interleave.trial_index'];
      expect(victimNow?.status).toBe('KILLED');
      expect(victimNow?.tags['interleave.killed_reason']).toMatch(
        /^abandoned: its worker stopped renewing the trial lock/,
      );
      const victimTrial = victimNow?.tags['interleave.trial_id'];
      const retried = runs.filter((run) => run.tags['interleave.trial_id'] === victimTrial);
      expect(retried.map((run) => run.status).sort()).toEqual(['FINISHED', 'KILLED']);
      expect(survivor.output()).toContain(`(${victimTrial}): started`);

      const status = interleaveSync(['sweep', 'sweep.yaml', ...queue, '--status'], dir);
      expect(status.status).toBe(0);
      expect(status.stdout).toContain('12 trials: 12 finished, 0 running, 0 waiting, 0 failed, 0 not started');

      survivor.kill('SIGTERM');
      expect(await exited(survivor)).toBe(0);
      console.log(
        `queue: worker 1 SIGKILLed ${killedAt.toFixed(1)}s in, mid-trial ${victimTrialIndex} ` +
          `(${finishedAtKill}/12 FINISHED then); all 12 FINISHED exactly once after ${seconds.toFixed(1)}s; ` +
          `runs in MLflow: ${runs.length} (${runs.filter((run) => run.status === 'KILLED').length} KILLED)`,
      );
    } catch (error) {
      // What the processes said is the first thing to read when this fails.
      for (const [name, child] of [
        ['sweep', follow],
        ['worker 1', doomed],
        ['worker 2', survivor],
      ] as const) {
        console.error(`--- ${name} ---\n${child.output()}`);
      }
      throw error;
    } finally {
      for (const child of [follow, ...workers]) killGroup(child);
    }
  }, 300_000);
});
