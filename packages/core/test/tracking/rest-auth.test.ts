import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MlflowApiError, MlflowHttpClient, openTracker, RestTrackingStore } from '../../src/index.js';
import { MlflowServer, SERVER_TIMEOUT_MS } from '../support/mlflow-server.js';

const ADMIN = 'admin';
const PASSWORD = 'Interleave-admin-password-2026';
const WRONG = 'not-the-password-9f3a1c';

let server: MlflowServer;
let walDirectory: string;
const savedEnv = { ...process.env };

beforeAll(async () => {
  server = await MlflowServer.launch({ basicAuth: { admin: ADMIN, password: PASSWORD } });
  walDirectory = await mkdtemp(join(tmpdir(), 'interleave-wal-auth-'));
}, SERVER_TIMEOUT_MS);

afterAll(async () => {
  await server?.dispose();
  if (walDirectory) await rm(walDirectory, { recursive: true, force: true });
});

afterEach(() => {
  for (const name of ['MLFLOW_TRACKING_USERNAME', 'MLFLOW_TRACKING_PASSWORD', 'MLFLOW_TRACKING_TOKEN']) {
    if (savedEnv[name] === undefined) delete process.env[name];
    else process.env[name] = savedEnv[name];
  }
});

describe("MLflow's basic-auth app", () => {
  it('accepts a run logged with the right user and password', async () => {
    process.env.MLFLOW_TRACKING_USERNAME = ADMIN;
    process.env.MLFLOW_TRACKING_PASSWORD = PASSWORD;
    const tracker = await openTracker({ uri: server.uri, experiment: 'secured', runName: 'ok', walDirectory });
    await tracker.logMetrics({ loss: 0.5 }, 1);
    await tracker.logArtifact('note.txt', 'hello');
    await tracker.end('FINISHED');
    const store = new RestTrackingStore(server.uri);
    expect((await store.getRun(tracker.runId)).status).toBe('FINISHED');
    expect(await store.getMetricHistory(tracker.runId, 'loss')).toHaveLength(1);
  });

  it('refuses a wrong password at the start, in one line that holds no secret', async () => {
    process.env.MLFLOW_TRACKING_USERNAME = ADMIN;
    process.env.MLFLOW_TRACKING_PASSWORD = WRONG;
    const failure = await openTracker({ uri: server.uri, experiment: 'secured', runName: 'no', walDirectory }).catch(
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(MlflowApiError);
    const error = failure as MlflowApiError;
    expect(error.status).toBe(401);
    expect(error.message).toBe(
      `MLflow server ${server.uri} rejected the credentials (401 Unauthorized): check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD`,
    );
    const everything = `${error.message}\n${error.stack}\n${JSON.stringify(error)}`;
    for (const secret of [WRONG, PASSWORD, Buffer.from(`${ADMIN}:${WRONG}`).toString('base64')]) {
      expect(everything).not.toContain(secret);
    }
  });

  it('without credentials says which variables to set', async () => {
    const failure = await new RestTrackingStore(server.uri).listExperiments().catch((error: unknown) => error);
    expect((failure as Error).message).toMatch(
      /401 Unauthorized\): set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN$/,
    );
  });
});

describe('the Authorization header', () => {
  it('sends MLFLOW_TRACKING_TOKEN as a bearer token, before username and password', async () => {
    const seen: IncomingHttpHeaders[] = [];
    const echo = createServer((request, response) => {
      seen.push(request.headers);
      response.setHeader('Content-Type', 'application/json');
      response.end('{"experiments": []}');
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const address = echo.address();
    const uri = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    try {
      const env = { MLFLOW_TRACKING_TOKEN: 'tok-123', MLFLOW_TRACKING_USERNAME: 'u', MLFLOW_TRACKING_PASSWORD: 'p' };
      await new MlflowHttpClient(uri, { env }).api('POST', 'experiments/search', { json: {} });
      await new MlflowHttpClient(uri, { env: { MLFLOW_TRACKING_USERNAME: 'u', MLFLOW_TRACKING_PASSWORD: 'p' } }).api(
        'POST',
        'experiments/search',
      );
      await new MlflowHttpClient(uri, { env: {} }).api('POST', 'experiments/search');
      expect(seen.map((headers) => headers.authorization)).toEqual([
        'Bearer tok-123',
        `Basic ${Buffer.from('u:p').toString('base64')}`,
        undefined,
      ]);
      expect(() => new MlflowHttpClient(uri, { env: { MLFLOW_TRACKING_USERNAME: 'u' } })).toThrow(/needs both/);
    } finally {
      await new Promise((resolve) => echo.close(resolve));
    }
  });
});
