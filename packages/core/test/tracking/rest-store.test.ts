import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFailed } from 'vitest';
import {
  InterleaveError,
  listArtifactFiles,
  MlflowApiError,
  MlflowUnreachableError,
  openTracker,
  RestTrackingStore,
  searchAllRuns,
  syncWriteAheadLogs,
} from '../../src/index.js';
import { FaultyProxy } from '../support/faulty-proxy.js';
import { freePort, MlflowServer, SERVER_TIMEOUT_MS } from '../support/mlflow-server.js';

/** One real MLflow server for the whole file (starting one is slow); each test has its own experiment. */
let server: MlflowServer;
let proxy: FaultyProxy;
let walDirectory: string;

const LOG_BATCH = /^POST \/api\/2\.0\/mlflow\/runs\/log-batch/;
/** Fast retries: the faults below are bursts, not outages. */
const QUICK = { baseDelayMs: 50, maxDelayMs: 1000, timeoutMs: 15_000 };

beforeAll(async () => {
  server = await MlflowServer.launch();
  proxy = await FaultyProxy.start(server.port);
  walDirectory = await mkdtemp(join(tmpdir(), 'interleave-wal-'));
}, SERVER_TIMEOUT_MS);

beforeEach(() => {
  onTestFailed(() => {
    process.stderr.write(`mlflow server output:\n${server.recentOutput()}\n`);
  });
});

afterAll(async () => {
  await proxy?.close();
  await server?.dispose();
  if (walDirectory) await rm(walDirectory, { recursive: true, force: true });
});

function viaProxy(options = {}): RestTrackingStore {
  return new RestTrackingStore(proxy.uri, { ...QUICK, ...options });
}

function resetProxy(): void {
  proxy.faultFor = () => 'pass';
  proxy.requests.length = 0;
}

describe('the REST tracking store against a real MLflow server', () => {
  it('logs 2,500 metric values at one step (plus 150 params and tags) in requests within MLflow’s limits and reads them back whole', async () => {
    resetProxy();
    const store = viaProxy();
    const experiment = await store.getOrCreateExperiment('big-batch');
    expect(await store.getOrCreateExperiment('big-batch')).toEqual(experiment);
    const run = await store.createRun(experiment.experimentId, { runName: 'wide' });
    const metrics = Array.from({ length: 2500 }, (_, index) => ({
      key: `layer/${index}/norm`,
      value: index / 7,
      timestamp: 1_760_000_000_000,
      step: 42,
    }));
    const params = Array.from({ length: 150 }, (_, index) => ({ key: `p${index}`, value: String(index) }));
    const tags = Array.from({ length: 150 }, (_, index) => ({ key: `t${index}`, value: `v${index}` }));
    await store.logBatch(run.runId, { metrics, params, tags });
    // 100 params + 100 tags + 800 metrics, then 50 + 50 + 900, then the last 800: three requests,
    // each of which the server would have refused had it broken a limit.
    expect(proxy.count(LOG_BATCH)).toBe(3);

    const back = await store.getRun(run.runId);
    expect(back.metricKeys).toHaveLength(2500);
    expect(Object.keys(back.params)).toHaveLength(150);
    expect(back.params.p149).toBe('149');
    expect(back.tags.t7).toBe('v7');
    expect(back.tags['mlflow.runName']).toBe('wide');
    const sample = await store.getMetricHistory(run.runId, 'layer/2499/norm');
    expect(sample).toEqual([{ value: 2499 / 7, timestamp: 1_760_000_000_000, step: 42 }]);
  });

  it('pages through runs and metric histories, and finds runs by tag', async () => {
    resetProxy();
    const store = viaProxy({ searchPageSize: 2, historyPageSize: 3 });
    const experiment = await store.getOrCreateExperiment('paging');
    const ids: string[] = [];
    for (let index = 0; index < 5; index++) {
      const run = await store.createRun(experiment.experimentId, {
        runName: `r${index}`,
        startTime: 1_760_000_000_000 + index,
        tags: index % 2 === 0 ? { 'interleave.trial_id': `trial-${index}` } : {},
      });
      ids.push(run.runId);
    }
    const all = await searchAllRuns(store, [experiment.experimentId]);
    expect(all.map((run) => run.runId)).toEqual(ids);
    expect(proxy.count(/^POST \/api\/2\.0\/mlflow\/runs\/search/)).toBe(3);
    const tagged = await searchAllRuns(store, [experiment.experimentId], { tag: { key: 'interleave.trial_id' } });
    expect(tagged.map((run) => run.runName)).toEqual(['r0', 'r2', 'r4']);
    const one = await searchAllRuns(store, [experiment.experimentId], {
      tag: { key: 'interleave.trial_id', value: 'trial-2' },
    });
    expect(one.map((run) => run.runName)).toEqual(['r2']);

    const points = Array.from({ length: 8 }, (_, step) => ({
      key: 'train/loss',
      value: 8 - step,
      timestamp: 1000 + step,
      step,
    }));
    await store.logBatch(ids[0] as string, {
      metrics: [...points, { key: 'odd', value: Number.NaN, timestamp: 5, step: 0 }],
    });
    const history = await store.getMetricHistory(ids[0] as string, 'train/loss');
    expect(history.map((point) => point.step)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(history.map((point) => point.value)).toEqual([8, 7, 6, 5, 4, 3, 2, 1]);
    expect((await store.getMetricHistory(ids[0] as string, 'odd'))[0]?.value).toBeNaN();
    expect(await store.getMetricHistory(ids[0] as string, 'never-logged')).toEqual([]);

    await store.updateRun(ids[1] as string, { status: 'FINISHED', endTime: 1_760_000_000_500 });
    const finished = await store.getRun(ids[1] as string);
    expect(finished.status).toBe('FINISHED');
    expect(finished.endTime).toBe(1_760_000_000_500);
  });

  it('uploads, lists and downloads artifacts through the server’s artifact proxy', async () => {
    const store = viaProxy();
    const experiment = await store.getOrCreateExperiment('artifacts');
    const run = await store.createRun(experiment.experimentId, { runName: 'files' });
    const weights = new Uint8Array(70_000).map((_, index) => (index * 31) % 256);
    await store.logArtifact(run.runId, 'config.yaml', 'model:\n  d_model: 64\n');
    await store.logArtifact(run.runId, 'checkpoint/model.safetensors', weights);
    await store.logArtifact(run.runId, 'checkpoint/trainer state.json', '{"step": 3}');
    expect(await store.listArtifacts(run.runId)).toEqual([
      { path: 'checkpoint', isDir: true },
      { path: 'config.yaml', isDir: false, size: 21 },
    ]);
    expect((await listArtifactFiles(store, run.runId)).map((entry) => entry.path)).toEqual([
      'checkpoint/model.safetensors',
      'checkpoint/trainer state.json',
      'config.yaml',
    ]);
    expect(await store.downloadArtifact(run.runId, 'checkpoint/model.safetensors')).toEqual(weights);
    expect(new TextDecoder().decode(await store.downloadArtifact(run.runId, 'checkpoint/trainer state.json'))).toBe(
      '{"step": 3}',
    );
    await expect(store.downloadArtifact(run.runId, 'checkpoint/missing.bin')).rejects.toThrow(/has no artifact/);
    expect(await store.listArtifacts(run.runId, 'nothing-here')).toEqual([]);
  });

  it('gives typed errors with MLflow’s error_code, and never retries a 4xx', async () => {
    resetProxy();
    const store = viaProxy();
    const experiment = await store.getOrCreateExperiment('errors');
    const run = await store.createRun(experiment.experimentId, { runName: 'strict' });
    await store.logBatch(run.runId, { params: [{ key: 'lr', value: '0.1' }] });
    proxy.requests.length = 0;
    const changed = await store.logBatch(run.runId, { params: [{ key: 'lr', value: '0.2' }] }).catch((error) => error);
    expect(changed).toBeInstanceOf(MlflowApiError);
    expect(changed.status).toBe(400);
    expect(changed.errorCode).toBe('INVALID_PARAMETER_VALUE');
    expect(changed.message.split('\n')).toHaveLength(1);
    expect(proxy.count(LOG_BATCH)).toBe(1);
    await expect(store.getRun('0'.repeat(32))).rejects.toThrow(InterleaveError);
    await expect(store.getRun('0'.repeat(32))).rejects.toThrow(/not found/);
  });

  it('retries bursts of 503 and dropped connections with backoff, and gives up with a clear error', async () => {
    resetProxy();
    const store = viaProxy({ maxAttempts: 6 });
    proxy.injectNext(/experiments\/get-by-name/, 'refuse-503', 3);
    const experiment = await store.getOrCreateExperiment('bursts');
    expect(proxy.count(/experiments\/get-by-name/)).toBeGreaterThanOrEqual(4);
    proxy.injectNext(/runs\/get/, 'drop-before', 2);
    const run = await store.createRun(experiment.experimentId, { runName: 'b' });
    expect((await store.getRun(run.runId)).runName).toBe('b');

    proxy.faultFor = () => 'refuse-503';
    const stubborn = viaProxy({ maxAttempts: 3 });
    const failure = await stubborn.getRun(run.runId).catch((error) => error);
    expect(failure).toBeInstanceOf(MlflowApiError);
    expect(failure.errorCode).toBe('HTTP_503');
    resetProxy();

    const closed = new RestTrackingStore(`http://127.0.0.1:${await freePort()}`, { ...QUICK, maxAttempts: 2 });
    const unreachable = await closed.listExperiments().catch((error) => error);
    expect(unreachable).toBeInstanceOf(MlflowUnreachableError);
    expect(unreachable.message).toMatch(/unreachable \(ECONNREFUSED\)/);
  });

  it('sends each metric once through the write-ahead log when answers are lost, slow or refused', async () => {
    resetProxy();
    const tracker = await openTracker({
      uri: proxy.uri,
      experiment: 'lossy',
      runName: 'wal',
      walDirectory,
      flushIntervalMs: 50,
    });
    // Log-batch requests in turn: answered, answer lost after the server acted, refused with 503.
    const faults = ['pass', 'drop-after', 'refuse-503'] as const;
    const applied: string[] = [];
    proxy.faultFor = (line) => {
      if (!LOG_BATCH.test(line)) return 'pass';
      const fault = faults[applied.length % faults.length] as (typeof faults)[number];
      applied.push(fault);
      return fault;
    };
    await tracker.logParams({ lr: 0.001, 'model.d_model': 64 });
    for (let step = 1; step <= 60; step++) {
      await tracker.logMetrics({ 'train/loss': 1 / step, 'train/accuracy': step / 60 }, step);
      if (step % 5 === 0) await new Promise((resolve) => setTimeout(resolve, 150));
    }
    await tracker.end('FINISHED');
    expect(applied.filter((fault) => fault === 'drop-after').length).toBeGreaterThanOrEqual(2);
    resetProxy();

    const store = new RestTrackingStore(server.uri);
    const run = await store.getRun(tracker.runId);
    expect(run.status).toBe('FINISHED');
    expect(run.params).toEqual({ lr: '0.001', 'model.d_model': '64' });
    for (const key of ['train/loss', 'train/accuracy']) {
      const steps = (await store.getMetricHistory(tracker.runId, key)).map((point) => point.step).sort((a, b) => a - b);
      expect(steps, key).toEqual(Array.from({ length: 60 }, (_, index) => index + 1));
    }
    // Fully sent: the log is gone.
    expect(await readdir(walDirectory)).toEqual([]);
  });

  it('leaves the backlog on disk when the server stays away, and `sync` sends it once', async () => {
    resetProxy();
    const notices: string[] = [];
    const tracker = await openTracker({
      uri: proxy.uri,
      experiment: 'offline',
      runName: 'later',
      walDirectory,
      flushIntervalMs: 50,
      endFlushTimeoutMs: 300,
      notice: (line) => notices.push(line),
    });
    proxy.faultFor = (line) => (LOG_BATCH.test(line) || /runs\/update/.test(line) ? 'drop-before' : 'pass');
    for (let step = 1; step <= 20; step++) await tracker.logMetrics({ loss: step }, step);
    await tracker.end('FINISHED');
    expect(notices).toHaveLength(1);
    expect(notices[0]).toContain(`interleave mlflow sync ${walDirectory}`);
    expect(notices[0]).toMatch(/21 records of run/);

    resetProxy();
    const synced = await syncWriteAheadLogs(walDirectory);
    expect(synced).toEqual([expect.objectContaining({ runId: tracker.runId, sent: 21, backlog: 0 })]);
    expect(await syncWriteAheadLogs(walDirectory)).toEqual([]);
    const store = new RestTrackingStore(server.uri);
    expect((await store.getRun(tracker.runId)).status).toBe('FINISHED');
    expect((await store.getMetricHistory(tracker.runId, 'loss')).map((point) => point.step)).toEqual(
      Array.from({ length: 20 }, (_, index) => index + 1),
    );
  });

  it('times out slow answers and retries them', async () => {
    resetProxy();
    const store = viaProxy({ timeoutMs: 2000, maxAttempts: 4 });
    proxy.delayMs = 5000;
    proxy.injectNext(/experiments\/get-by-name/, 'delay', 2);
    const experiment = await store.getOrCreateExperiment('slow');
    expect(experiment.name).toBe('slow');
    expect(proxy.count(/experiments\/get-by-name/)).toBeGreaterThanOrEqual(3);
  });
});
