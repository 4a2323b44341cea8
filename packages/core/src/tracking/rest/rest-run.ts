import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { InterleaveError } from '../../errors.js';
import { validateArtifactPath, validateKey, validateValueLength } from '../mlflow-names.js';
import type { TrackingStore } from '../store.js';
import type { RunStatus, Tracker } from '../tracker.js';
import { sendPending } from './wal-sender.js';
import type { WalEntry, WriteAheadLog } from './write-ahead-log.js';

export interface RestRunOptions {
  /** How often the background sender wakes up (default 2 s). */
  flushIntervalMs?: number;
  /** How long `end` keeps trying to send the backlog before it leaves it on disk (default 120 s). */
  endFlushTimeoutMs?: number;
  /** Where the run tells about a backlog it leaves behind; stderr by default. */
  notice?: (line: string) => void;
  /**
   * `(key, step)` pairs a resumed run must not log again: the server already holds them from the
   * attempt that crashed, and the REST API cannot delete points.
   */
  alreadyLogged?: ReadonlySet<string>;
  /** Annotating an existing run (an evaluation): `end` only flushes and leaves the status alone. */
  annotateOnly?: boolean;
}

/** Entries that trigger a send even while the server fails, rather than waiting for the timer: one full request. */
const SEND_NOW_BACKLOG = 1000;

/**
 * A run on a tracking server (docs/design.md#mlflow-tracking-stores). Metrics, params, tags
 * and the final status go to the write-ahead log first and are sent in the background, so a
 * server that is down, slow or restarting never stops training; `end` sends the backlog or,
 * when the server stays away, says where it waits for `interleave mlflow sync`. Artifacts are
 * uploaded directly (they are files the run already keeps until it ends).
 */
export class RestRun implements Tracker {
  readonly artifactLocation: string;
  private ended = false;
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;
  private fatal: Error | undefined;
  private appendedSinceKick = 0;
  private lastTransient: Error | undefined;
  private readonly options: Required<Omit<RestRunOptions, 'alreadyLogged' | 'annotateOnly'>> & RestRunOptions;

  constructor(
    readonly store: TrackingStore,
    readonly runId: string,
    readonly experimentId: string,
    artifactUri: string,
    readonly log: WriteAheadLog,
    options: RestRunOptions = {},
  ) {
    this.artifactLocation = artifactUri;
    this.options = {
      flushIntervalMs: 2000,
      endFlushTimeoutMs: 120_000,
      notice: (line) => process.stderr.write(`${line}\n`),
      ...options,
    };
    this.timer = setInterval(() => this.kick(), this.options.flushIntervalMs);
    // The sender must never keep a finished program alive.
    this.timer.unref();
  }

  async logParams(params: Record<string, string | number | boolean>): Promise<void> {
    this.assertUsable();
    const entries: WalEntry[] = Object.entries(params).map(([key, value]) => {
      validateKey('param', key);
      validateValueLength('param', key, String(value));
      return { kind: 'param', key, value: String(value) };
    });
    this.append(entries);
  }

  async logMetrics(metrics: Record<string, number>, step: number, timestampMs: number = Date.now()): Promise<void> {
    this.assertUsable();
    if (!Number.isSafeInteger(step)) throw new InterleaveError(`MLflow metric step must be an integer, got ${step}`);
    const entries: WalEntry[] = [];
    for (const [key, value] of Object.entries(metrics)) {
      validateKey('metric', key);
      if (typeof value !== 'number')
        throw new InterleaveError(`MLflow metric '${key}' must be a number, got ${typeof value}`);
      if (this.options.alreadyLogged?.has(`${key}\n${step}`)) continue;
      entries.push({ kind: 'metric', key, value, timestamp: timestampMs, step });
    }
    this.append(entries);
  }

  async setTags(tags: Record<string, string>): Promise<void> {
    this.assertUsable();
    const entries: WalEntry[] = Object.entries(tags).map(([key, value]) => {
      validateKey('tag', key);
      validateValueLength('tag', key, value);
      return { kind: 'tag', key, value };
    });
    this.append(entries);
  }

  async logArtifact(relativePath: string, data: Uint8Array | string): Promise<void> {
    this.assertUsable();
    validateArtifactPath(relativePath);
    await this.store.logArtifact(this.runId, relativePath, data);
  }

  async logArtifacts(prefix: string, write: (folder: string) => Promise<void>): Promise<void> {
    this.assertUsable();
    validateArtifactPath(prefix);
    const staging = await mkdtemp(join(tmpdir(), 'interleave-artifacts-'));
    try {
      await write(staging);
      const entries = await readdir(staging, { recursive: true, withFileTypes: true });
      const files = entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
      for (const file of files.sort()) {
        const relativePath = relative(staging, file).split(sep).join('/');
        await this.store.logArtifact(this.runId, `${prefix}/${relativePath}`, new Uint8Array(await readFile(file)));
      }
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  async end(status: Exclude<RunStatus, 'RUNNING' | 'SCHEDULED'>): Promise<void> {
    if (this.ended) throw new Error(`MLflow run ${this.runId} has already ended`);
    this.ended = true;
    if (!this.options.annotateOnly) {
      this.log.append([{ kind: 'update', status, endTime: Date.now() }]);
    }
    clearInterval(this.timer);
    await this.drain(this.options.endFlushTimeoutMs);
  }

  /** For an annotated run: sends what was logged (as `end` does), after which the run is done. */
  async flush(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    clearInterval(this.timer);
    await this.drain(this.options.endFlushTimeoutMs);
  }

  /** Sends what is waiting, for up to `timeoutMs`; leaves the rest on disk and says where. */
  async drain(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let pause = 250;
    for (;;) {
      await this.kick();
      if (this.fatal) {
        const fatal = this.fatal;
        this.fatal = undefined;
        throw fatal;
      }
      const backlog = this.log.backlog();
      if (backlog === 0) {
        await this.log.remove();
        await this.store.close?.();
        return;
      }
      if (Date.now() + pause > deadline) {
        this.options.notice(
          `MLflow server ${this.store.displayUri} did not take everything (${this.lastTransient?.message ?? 'unreachable'}): ` +
            `${backlog} records of run ${this.runId} wait in ${this.log.path}; send them with: interleave mlflow sync ${this.log.directory}`,
        );
        await this.store.close?.();
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, 5000);
    }
  }

  private append(entries: WalEntry[]): void {
    this.log.append(entries);
    this.appendedSinceKick += entries.length;
    // While the server answers, send at once (what arrives meanwhile waits for the next request,
    // which batches it); after a failure, the timer paces the retries.
    const healthy = this.lastTransient === undefined;
    if (this.sending === undefined && (healthy || this.appendedSinceKick >= SEND_NOW_BACKLOG)) void this.kick();
  }

  /** Starts a send unless one is running; resolves when the current one is done. */
  private kick(): Promise<void> {
    if (this.sending) return this.sending;
    this.appendedSinceKick = 0;
    this.sending = sendPending(this.log, this.store)
      .then((result) => {
        this.lastTransient = result.error;
      })
      .catch((error: unknown) => {
        this.fatal = error as Error;
        clearInterval(this.timer);
      })
      .finally(() => {
        this.sending = undefined;
      });
    return this.sending;
  }

  private assertUsable(): void {
    if (this.ended) throw new Error(`MLflow run ${this.runId} has already ended`);
    if (this.fatal) {
      const fatal = this.fatal;
      throw new InterleaveError(
        `MLflow server ${this.store.displayUri} rejected what run ${this.runId} logged: ${fatal.message}`,
      );
    }
  }
}
