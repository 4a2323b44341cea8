import { appendFileSync, closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { InterleaveError } from '../../errors.js';
import { writeFileAtomic } from '../../io/atomic-write.js';
import type { RunStatus } from '../tracker.js';

/** The run and server a log belongs to: its first line, so `interleave mlflow sync` needs nothing else. */
export interface WalHeader {
  version: 1;
  /** The server URI without credentials (they come from the environment when sending). */
  uri: string;
  runId: string;
}

export type WalEntry =
  | { kind: 'metric'; key: string; value: number; timestamp: number; step: number }
  | { kind: 'param'; key: string; value: string }
  | { kind: 'tag'; key: string; value: string }
  | { kind: 'update'; status: RunStatus; endTime: number | null };

/** What the server has acknowledged: entries before byte `offset` were sent and answered. */
export interface WalProgress {
  offset: number;
  /**
   * The last request after `offset` failed in a way that may still have reached the server
   * (the connection broke after sending): its metrics are checked against the server before
   * they are sent again, so nothing lands twice.
   */
  uncertain: boolean;
}

/** A pending entry and the byte offset just after its line. */
export interface PendingEntry {
  entry: WalEntry;
  end: number;
}

const LOG_SUFFIX = '.wal.jsonl';
const PROGRESS_SUFFIX = '.acked.json';

/** Where logs go unless `INTERLEAVE_MLFLOW_WAL_DIR` says otherwise: beside the run's working directory. */
export function defaultWalDirectory(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.INTERLEAVE_MLFLOW_WAL_DIR || join('.interleave', 'mlflow-wal'));
}

/**
 * A run's append-only write-ahead log (docs/design.md#mlflow-tracking-stores): every metric,
 * param, tag and status change is appended here before it is sent, one JSON line each; a
 * separate small file records how far the server has acknowledged. Appends are synchronous so
 * that a line is on disk before the call that logged it returns.
 */
export class WriteAheadLog {
  readonly path: string;
  readonly progressPath: string;

  private constructor(
    readonly directory: string,
    readonly header: WalHeader,
  ) {
    this.path = join(directory, `${header.runId}${LOG_SUFFIX}`);
    this.progressPath = join(directory, `${header.runId}${PROGRESS_SUFFIX}`);
  }

  /** Opens the log of `header.runId` in `directory`, creating it (and the folder) when missing. */
  static open(directory: string, header: WalHeader): WriteAheadLog {
    const log = new WriteAheadLog(directory, header);
    try {
      mkdirSync(directory, { recursive: true });
      if (!existsSync(log.path)) appendFileSync(log.path, `${JSON.stringify(header)}\n`);
    } catch (error) {
      throw new InterleaveError(`cannot write the MLflow write-ahead log ${log.path}: ${(error as Error).message}`);
    }
    return log;
  }

  /** Reads an existing log (for `sync`): its header says which run and server it belongs to. */
  static read(path: string): WriteAheadLog {
    const firstLine = readFileSync(path, 'utf8').split('\n', 1)[0] ?? '';
    let header: WalHeader;
    try {
      header = JSON.parse(firstLine) as WalHeader;
    } catch {
      throw new InterleaveError(`${path} is not an MLflow write-ahead log (its first line is not a header)`);
    }
    if (header.version !== 1 || typeof header.runId !== 'string' || typeof header.uri !== 'string') {
      throw new InterleaveError(`${path} is not an MLflow write-ahead log of a version this program reads`);
    }
    const directory = path.slice(0, path.length - `${header.runId}${LOG_SUFFIX}`.length);
    return new WriteAheadLog(directory, header);
  }

  /** Every log in `directory`, oldest run first by name. */
  static async list(directory: string): Promise<string[]> {
    const names = await readdir(directory).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new InterleaveError(`no write-ahead log folder ${directory}`);
      }
      throw error;
    });
    return names
      .filter((name) => name.endsWith(LOG_SUFFIX))
      .sort()
      .map((name) => join(directory, name));
  }

  append(entries: readonly WalEntry[]): void {
    if (entries.length === 0) return;
    const text = entries.map((entry) => `${JSON.stringify(encodeEntry(entry))}\n`).join('');
    try {
      appendFileSync(this.path, text);
    } catch (error) {
      throw new InterleaveError(
        `cannot append to the MLflow write-ahead log ${this.path}: ${(error as Error).message}`,
      );
    }
  }

  progress(): WalProgress {
    try {
      const parsed = JSON.parse(readFileSync(this.progressPath, 'utf8')) as WalProgress;
      return { offset: Number(parsed.offset), uncertain: parsed.uncertain === true };
    } catch {
      return { offset: this.headerLength(), uncertain: false };
    }
  }

  async saveProgress(progress: WalProgress): Promise<void> {
    await writeFileAtomic(this.progressPath, JSON.stringify(progress));
  }

  /** Complete lines after `offset`, at most `limit` of them (a line still being written is left). */
  pending(offset: number, limit = Number.POSITIVE_INFINITY): PendingEntry[] {
    const descriptor = openSync(this.path, 'r');
    let text: string;
    try {
      const size = fstatSync(descriptor).size;
      const buffer = Buffer.alloc(Math.max(0, size - offset));
      readSync(descriptor, buffer, 0, buffer.length, offset);
      text = buffer.toString('utf8');
    } finally {
      closeSync(descriptor);
    }
    const entries: PendingEntry[] = [];
    let position = offset;
    let start = 0;
    while (entries.length < limit) {
      const newline = text.indexOf('\n', start);
      if (newline < 0) break;
      const line = text.slice(start, newline);
      position += Buffer.byteLength(line, 'utf8') + 1;
      start = newline + 1;
      if (line.trim() === '') continue;
      entries.push({ entry: decodeEntry(line, this.path), end: position });
    }
    return entries;
  }

  /** Number of entries not yet acknowledged. */
  backlog(): number {
    return this.pending(this.progress().offset).length;
  }

  /** Removes the log once everything in it has been acknowledged. */
  async remove(): Promise<void> {
    await rm(this.progressPath, { force: true });
    await rm(this.path, { force: true });
  }

  private headerLength(): number {
    return Buffer.byteLength(`${JSON.stringify(this.header)}\n`, 'utf8');
  }
}

/** Compact lines: a run logs thousands of them. JSON has no NaN or ±Infinity, so those are strings. */
function encodeEntry(entry: WalEntry): unknown {
  switch (entry.kind) {
    case 'metric':
      return { m: [entry.key, encodeNumber(entry.value), entry.timestamp, entry.step] };
    case 'param':
      return { p: [entry.key, entry.value] };
    case 'tag':
      return { t: [entry.key, entry.value] };
    case 'update':
      return { u: [entry.status, entry.endTime] };
  }
}

function decodeEntry(line: string, path: string): WalEntry {
  let parsed: Record<string, unknown[]>;
  try {
    parsed = JSON.parse(line) as Record<string, unknown[]>;
  } catch {
    throw new InterleaveError(`${path}: malformed line ${JSON.stringify(line.slice(0, 80))}`);
  }
  if (parsed.m) {
    const [key, value, timestamp, step] = parsed.m as [string, number | string, number, number];
    return { kind: 'metric', key, value: Number(value), timestamp, step };
  }
  if (parsed.p) return { kind: 'param', key: String(parsed.p[0]), value: String(parsed.p[1]) };
  if (parsed.t) return { kind: 'tag', key: String(parsed.t[0]), value: String(parsed.t[1]) };
  if (parsed.u) {
    const [status, endTime] = parsed.u as [RunStatus, number | null];
    return { kind: 'update', status, endTime };
  }
  throw new InterleaveError(`${path}: unknown entry ${JSON.stringify(line.slice(0, 80))}`);
}

function encodeNumber(value: number): number | string {
  return Number.isFinite(value) ? value : String(value);
}
