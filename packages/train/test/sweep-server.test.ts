import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RestTrackingStore, type RunRecord, searchAllRuns } from '@interleave/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlflowServer, SERVER_TIMEOUT_MS } from '../../core/test/support/mlflow-server.js';
import { startRedis } from './redis-server.js';
import {
  exited,
  finishedPerTrial,
  interleaveAsync,
  interleaveSync,
  killGroup,
  processGroupOf,
  TINY_GRID,
  waitFor,
  workspace,
} from './sweep-support.js';

let redis: Awaited<ReturnType<typeof startRedis>>;
let server: MlflowServer;

beforeAll(async () => {
  redis = await startRedis();
  server = await MlflowServer.launch();
}, SERVER_TIMEOUT_MS);

afterAll(async () => {
  await redis?.stop();
  await server?.dispose();
});

async function trialRuns(store: RestTrackingStore): Promise<RunRecord[]> {
  const experiment = await store.getExperimentByName('sweep-test');
  if (experiment === undefined) return [];
  return searchAllRuns(store, [experiment.experimentId], { tag: { key: 'interleave.trial_id' } });
}

describe('a distributed sweep with nothing shared but Redis and the MLflow server', () => {
  it(
    'finishes every trial exactly once on the server although a worker is SIGKILLed mid-trial, and reports it',
    async () => {
      // Three working directories: the coordinator's and one per worker, as on three machines.
      const coordinator = workspace({
        // Longer trials than the file-store test's: the server sees a run's state a moment late
        // (the write-ahead log sends in the background), so a RUNNING run must still be training.
        'sweep.yaml': TINY_GRID.replace('uri: ./mlruns', `uri: ${server.uri}`).replace('steps: 3', 'steps: 200'),
      });
      const workerDirs = [0, 1].map(() => mkdtempSync(join(tmpdir(), 'interleave-worker-')));
      const queue = ['--queue', redis.url, '--queue-name', `sweep-server-${process.pid}-${Date.now()}`];
      const enqueued = interleaveSync(['sweep', 'sweep.yaml', ...queue, '--detach'], coordinator);
      expect(enqueued.stderr).toBe('');
      expect(enqueued.stdout).toContain('12 trials added');

      const store = new RestTrackingStore(server.uri);
      const workers = workerDirs.map((dir) => interleaveAsync(['worker', ...queue, '--lock-ms', '3000'], dir));
      const follow = interleaveAsync(['sweep', 'sweep.yaml', ...queue, '--backoff-ms', '500'], coordinator);
      const [doomed, survivor] = workers as [(typeof workers)[0], (typeof workers)[0]];
      try {
        const victim = await waitFor(
          'a trial running in the first worker',
          async () => {
            const runs = await trialRuns(store);
            if (runs.filter((run) => run.status === 'FINISHED').length < 2) return undefined;
            return runs.find((run) => {
              const owner = run.tags['interleave.worker'] ?? '';
              const pid = Number(owner.slice(owner.lastIndexOf(':') + 1));
              return run.status === 'RUNNING' && processGroupOf(pid) === doomed.pid;
            });
          },
          { everyMs: 100, timeoutMs: 240_000 },
        );
        killGroup(doomed);
        await exited(doomed);

        expect(await exited(follow)).toBe(0);
        expect(follow.output()).toContain('12/12 trials finished');
        const runs = await trialRuns(store);
        const perTrial = finishedPerTrial(runs);
        expect(perTrial.size).toBe(12);
        expect([...perTrial.entries()].filter(([, count]) => count !== 1)).toEqual([]);
        // The killed worker's run was closed by the worker that took its trial over.
        const victimNow = runs.find((run) => run.runId === victim.runId);
        expect(victimNow?.status).toBe('KILLED');
        expect(victimNow?.tags['interleave.killed_reason']).toMatch(
          /^abandoned: its worker stopped renewing the trial lock/,
        );
        const victimTrial = victim.tags['interleave.trial_id'];
        const retried = runs.filter((run) => run.tags['interleave.trial_id'] === victimTrial);
        expect(retried.map((run) => run.status).sort()).toEqual(['FINISHED', 'KILLED']);

        survivor.kill('SIGTERM');
        expect(await exited(survivor)).toBe(0);

        const report = interleaveSync(['report', 'sweep-test', '--uri', server.uri, '--out', 'report'], coordinator);
        // (The learning-rate plot of a sweep makes vega-lite print a warning on stderr, whatever the store.)
        expect(report.stderr).not.toMatch(/error/i);
        expect(report.status).toBe(0);
        const html = readFileSync(join(coordinator, 'report', 'report.html'), 'utf8');
        for (const run of runs.filter((candidate) => candidate.status === 'FINISHED')) {
          expect(html).toContain(`<td>${run.runId.slice(0, 8)}</td>`);
        }
        console.log(
          `server sweep: worker 1 SIGKILLed mid-trial ${victim.tags['interleave.trial_index']}; 12 trials FINISHED exactly once; ` +
            `${runs.length} trial runs on the server (${runs.filter((run) => run.status === 'KILLED').length} KILLED)`,
        );
      } catch (error) {
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
        for (const dir of [coordinator, ...workerDirs]) rmSync(dir, { recursive: true, force: true });
      }
    },
    SERVER_TIMEOUT_MS,
  );
});
