import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensurePythonVenv, type PythonVenv } from './python-venv.js';

/**
 * The MLflow release the REST tests run against: 3.18.0 is newer, but the registry this
 * project installs from lacks its pinned mlflow-skinny/mlflow-tracing, so pip cannot install it.
 */
export const MLFLOW_VERSION = '3.17.2';

/** A fresh install downloads ~100 MB; a started server imports all of MLflow (slow on a busy machine). */
export const SERVER_TIMEOUT_MS = 10 * 60_000;

export interface MlflowServerOptions {
  /** Run MLflow's basic-auth app with this admin user (`--app-name basic-auth`). */
  basicAuth?: { admin: string; password: string };
}

/**
 * A real `mlflow server` on loopback with a SQLite backend and artifact serving, in its own
 * temporary folder. `stop` kills it (as a crash would) and `start` brings it back on the same
 * port with the same data, for outage tests.
 */
export class MlflowServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private output = '';
  private readonly secretKey = randomBytes(16).toString('hex');

  private constructor(
    readonly venv: PythonVenv,
    readonly directory: string,
    readonly port: number,
    private readonly options: MlflowServerOptions,
  ) {}

  static async launch(options: MlflowServerOptions = {}): Promise<MlflowServer> {
    // The `auth` extra brings Flask-WTF, which the basic-auth app needs.
    const venv = await ensurePythonVenv('mlflow', [`mlflow==${MLFLOW_VERSION}`, `mlflow[auth]==${MLFLOW_VERSION}`], {
      imports: ['mlflow', 'flask_wtf'],
    });
    const directory = await mkdtemp(join(tmpdir(), 'interleave-mlflow-server-'));
    const server = new MlflowServer(venv, directory, await freePort(), options);
    if (options.basicAuth) {
      await writeFile(
        join(directory, 'basic_auth.ini'),
        [
          '[mlflow]',
          'default_permission = READ',
          `database_uri = sqlite:///${join(directory, 'basic_auth.db')}`,
          `admin_username = ${options.basicAuth.admin}`,
          `admin_password = ${options.basicAuth.password}`,
          'authorization_function = mlflow.server.auth:authenticate_request_basic_auth',
          '',
        ].join('\n'),
      );
    }
    await server.start();
    return server;
  }

  /** The server's last lines of output, to show when a test against it fails. */
  recentOutput(): string {
    return this.output;
  }

  get uri(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const args = [
      'server',
      '--backend-store-uri',
      `sqlite:///${join(this.directory, 'mlflow.db')}`,
      '--artifacts-destination',
      join(this.directory, 'artifacts'),
      '--serve-artifacts',
      '--host',
      '127.0.0.1',
      '--port',
      String(this.port),
      '--workers',
      '1',
    ];
    if (this.options.basicAuth) args.push('--app-name', 'basic-auth');
    const env: NodeJS.ProcessEnv = { ...process.env };
    if (this.options.basicAuth) {
      env.MLFLOW_AUTH_CONFIG_PATH = join(this.directory, 'basic_auth.ini');
      // The basic-auth app's CSRF protection refuses to start without a fixed key.
      env.MLFLOW_FLASK_SERVER_SECRET_KEY = this.secretKey;
    } else {
      // MLflow reads it even without the auth app (runs/search does), and fails on a missing file.
      delete env.MLFLOW_AUTH_CONFIG_PATH;
    }
    // Credentials of the person running the tests must not reach the server's own client code.
    for (const name of [
      'MLFLOW_TRACKING_URI',
      'MLFLOW_TRACKING_USERNAME',
      'MLFLOW_TRACKING_PASSWORD',
      'MLFLOW_TRACKING_TOKEN',
    ]) {
      delete env[name];
    }
    // Its own process group: stopping it also stops the uvicorn workers it starts.
    const child = spawn(this.venv.bin('mlflow'), args, { cwd: this.directory, env, detached: true, stdio: 'pipe' });
    this.child = child;
    this.output = '';
    const collect = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString('utf8')).slice(-8000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    await this.waitUntilHealthy(child);
  }

  /** Kills the server's process group at once, as a crash or a pulled cable would. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    this.child = undefined;
    try {
      process.kill(-(child.pid as number), 'SIGKILL');
    } catch {
      // Already gone.
    }
    await this.exited;
    // The port is free once nothing answers on it any more.
    for (let waited = 0; waited < 10_000 && (await answers(this.port)); waited += 100) await sleep(100);
  }

  async dispose(): Promise<void> {
    await this.stop();
    await rm(this.directory, { recursive: true, force: true });
  }

  private async waitUntilHealthy(child: ChildProcess): Promise<void> {
    const deadline = Date.now() + SERVER_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) {
        throw new Error(`mlflow server exited with ${child.exitCode} before it was ready:\n${this.output}`);
      }
      const healthy = await fetch(`${this.uri}/health`)
        .then((response) => response.ok)
        .catch(() => false);
      if (healthy) return;
      await sleep(250);
    }
    await this.stop();
    throw new Error(`mlflow server did not answer /health within ${SERVER_TIMEOUT_MS / 1000} s:\n${this.output}`);
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

async function answers(port: number): Promise<boolean> {
  return fetch(`http://127.0.0.1:${port}/health`)
    .then(() => true)
    .catch(() => false);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
