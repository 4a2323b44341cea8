import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTracker, RestTrackingStore } from '../../src/index.js';
import { MlflowServer, SERVER_TIMEOUT_MS } from '../support/mlflow-server.js';

let server: MlflowServer;
let walDirectory: string;

beforeAll(async () => {
  server = await MlflowServer.launch();
  walDirectory = await mkdtemp(join(tmpdir(), 'interleave-wal-outage-'));
}, SERVER_TIMEOUT_MS);

afterAll(async () => {
  await server?.dispose();
  if (walDirectory) await rm(walDirectory, { recursive: true, force: true });
});

const KEYS = ['train/loss', 'train/accuracy', 'train/grad_norm', 'train/lr', 'compute/tokens', 'compute/flops'];
/**
 * How long the server stays down before it is started again. The acceptance is 30 s; the test
 * uses 6 s to keep CI short, and restarting MLflow (importing it) adds its own seconds on top.
 */
const OUTAGE_MS = 6000;

describe('a run while its MLflow server is killed and restarted', () => {
  it(
    'keeps training, then ends with every metric of every step on the server exactly once',
    async () => {
      const tracker = await openTracker({
        uri: server.uri,
        experiment: 'outage',
        runName: 'survivor',
        walDirectory,
        flushIntervalMs: 100,
      });
      await tracker.logParams({ 'train.steps': 'until stopped' });
      let step = 0;
      let stepsWhileDown = 0;
      let serverDown = false;
      let stopLogging = false;
      const logging = (async () => {
        while (!stopLogging) {
          step++;
          await tracker.logMetrics(Object.fromEntries(KEYS.map((key, index) => [key, step * (index + 1)])), step);
          if (serverDown) stepsWhileDown++;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      })();
      const waitForStep = async (target: number) => {
        while (step < target) await new Promise((resolve) => setTimeout(resolve, 20));
      };

      await waitForStep(30);
      await server.stop();
      serverDown = true;
      const downAt = performance.now();
      await new Promise((resolve) => setTimeout(resolve, OUTAGE_MS));
      await server.start();
      serverDown = false;
      const downSeconds = (performance.now() - downAt) / 1000;
      const backAt = step;
      await waitForStep(backAt + 30);
      stopLogging = true;
      await logging;
      await tracker.end('FINISHED');

      // Training did not wait for the server: steps went on while it was down.
      expect(stepsWhileDown).toBeGreaterThan(10);
      const store = new RestTrackingStore(server.uri);
      const run = await store.getRun(tracker.runId);
      expect(run.status).toBe('FINISHED');
      const every = Array.from({ length: step }, (_, index) => index + 1);
      for (const [index, key] of KEYS.entries()) {
        const history = await store.getMetricHistory(tracker.runId, key);
        expect(
          history.map((point) => point.step).sort((a, b) => a - b),
          key,
        ).toEqual(every);
        expect(
          history.every((point) => point.value === point.step * (index + 1)),
          key,
        ).toBe(true);
      }
      expect(await readdir(walDirectory)).toEqual([]);
      console.log(
        `outage: server down ${downSeconds.toFixed(1)}s (killed, ${OUTAGE_MS / 1000}s, then restarted); ` +
          `${stepsWhileDown} of ${step} steps logged meanwhile; ${KEYS.length} metrics × ${step} steps on the server, each once`,
      );
    },
    SERVER_TIMEOUT_MS,
  );
});
