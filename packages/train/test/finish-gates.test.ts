import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openTracker, type Tracker } from '@interleave/core';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { finishUnlessFinishedElsewhere, finishWithRedisClaim } from '../src/sweep/finish-gates.js';
import type { TrialJob } from '../src/sweep/trial-protocol.js';
import { SWEEP_TAGS } from '../src/sweep/trial-runs.js';
import { startRedis } from './redis-server.js';

describe('finish gates: which run of a trial may be marked FINISHED (real Redis, file store)', () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let client: Redis;
  const dir = mkdtempSync(join(tmpdir(), 'interleave-finish-gates-'));
  const tracking = { uri: join(dir, 'mlruns'), experiment: 'gates' };
  beforeAll(async () => {
    redis = await startRedis();
    client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    client?.disconnect();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  // The gates read only where the trial's runs are and which trial it is.
  const jobOf = (trialId: string) => ({ tracking, trialId }) as unknown as TrialJob;
  const runOf = async (trialId: string): Promise<Tracker> => {
    const run = await openTracker({ ...tracking, runName: trialId });
    await run.setTags({ [SWEEP_TAGS.trialId]: trialId });
    return run;
  };
  const namespace = () => `gates-${process.pid}-${Math.random().toString(36).slice(2)}`;

  it('lets the first run finish and refuses a second while the first is alive or finished', async () => {
    const gate = finishWithRedisClaim(client, namespace());
    const first = await runOf('t1');
    const second = await runOf('t1');
    expect(await gate(jobOf('t1'), first.runId)).toBeUndefined();
    expect(await gate(jobOf('t1'), first.runId)).toBeUndefined(); // asking again keeps the claim
    expect(await gate(jobOf('t1'), second.runId)).toMatch(
      new RegExp(`^a duplicate: run ${first.runId} of trial t1 is being marked FINISHED by another worker$`),
    );
    await first.end('FINISHED');
    expect(await gate(jobOf('t1'), second.runId)).toMatch(/^a duplicate: /);
  });

  it('replaces the claim of a run that was closed after claiming (its worker killed before finishing)', async () => {
    const gate = finishWithRedisClaim(client, namespace());
    const killed = await runOf('t2');
    const retry = await runOf('t2');
    const third = await runOf('t2');
    expect(await gate(jobOf('t2'), killed.runId)).toBeUndefined();
    // What the worker that takes the trial over does to the dead worker's run (abandoned-runs.ts).
    await killed.end('KILLED');
    expect(await gate(jobOf('t2'), retry.runId)).toBeUndefined();
    // The claim is the retry's now: a third run is refused while the retry is alive.
    expect(await gate(jobOf('t2'), third.runId)).toMatch(
      new RegExp(`^a duplicate: run ${retry.runId} of trial t2 is being marked FINISHED by another worker$`),
    );
  });

  it('refuses to finish a run that another worker closed while it trained', async () => {
    const slow = await runOf('t3');
    await slow.end('KILLED'); // marked abandoned by the worker that took the trial over
    expect(await finishUnlessFinishedElsewhere(jobOf('t3'), slow.runId)).toBe(
      `run ${slow.runId} was closed KILLED by another worker, which took trial t3 over`,
    );
    const gate = finishWithRedisClaim(client, namespace());
    expect(await gate(jobOf('t3'), slow.runId)).toMatch(/was closed KILLED by another worker/);
  });

  it('lets one of several runs win a stale claim that they all find at once', async () => {
    const space = namespace();
    const killed = await runOf('t4');
    expect(await finishWithRedisClaim(client, space)(jobOf('t4'), killed.runId)).toBeUndefined();
    await killed.end('KILLED');
    const contenders = await Promise.all([runOf('t4'), runOf('t4'), runOf('t4')]);
    // Separate connections, so the contenders' commands interleave in Redis as separate workers' would.
    const clients = contenders.map(() => new Redis(redis.url, { maxRetriesPerRequest: 1 }));
    try {
      const verdicts = await Promise.all(
        contenders.map((run, i) => finishWithRedisClaim(clients[i] as Redis, space)(jobOf('t4'), run.runId)),
      );
      expect(verdicts.filter((verdict) => verdict === undefined)).toHaveLength(1);
    } finally {
      for (const c of clients) c.disconnect();
    }
  });
});
