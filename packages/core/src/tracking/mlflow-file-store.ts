import { randomUUID } from 'node:crypto';
import { appendFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InterleaveError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import {
  describeFsError,
  type ExperimentInfo,
  ensureStoreRoot,
  findOrCreateExperiment,
  META_FILE,
  scanExperiments,
} from './file-store-experiments.js';
import {
  formatMetricLine,
  parseMetaYaml,
  parseMetricLine,
  RUN_STATUS_CODES,
  resolveFileStoreRoot,
  runStatusFromCode,
  toFileUri,
  toMetaYaml,
} from './file-store-format.js';
import { validateArtifactPath, validateKey, validateValueLength } from './mlflow-names.js';
import type { OpenRunOptions, ResumeRunOptions, RunStatus, Tracker } from './tracker.js';

/** `source_type` in run meta.yaml: MLflow's SourceType.LOCAL. */
const SOURCE_TYPE_LOCAL = 4;
const RUN_NAME_TAG = 'mlflow.runName';

/**
 * Opens a new run in MLflow's file store (docs/design.md#mlflow-file-store): resolves the root from `options.uri`,
 * creates the store and the experiment when missing, and writes the run's folder.
 */
export async function openFileStoreRun(options: OpenRunOptions): Promise<Tracker> {
  const root = resolveFileStoreRoot(options.uri);
  await ensureStoreRoot(root);
  const experiment = await findOrCreateExperiment(root, options.experiment);
  return FileStoreRun.create(experiment, options.runName, options.user ?? currentUser());
}

/**
 * Reopens an existing run to continue it (after a crash, a kill or Ctrl-C): its status goes
 * back to RUNNING and metric points after `afterStep` are dropped. Params stay write-once, so
 * the resumed attempt may only log the same values again.
 */
export async function resumeFileStoreRun(options: ResumeRunOptions): Promise<Tracker> {
  const root = resolveFileStoreRoot(options.uri);
  for (const experiment of await scanExperiments(root)) {
    const directory = join(experiment.directory, options.runId);
    const text = await readFile(join(directory, META_FILE), 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    return FileStoreRun.reopen(experiment, directory, parseMetaYaml(text), options.afterStep);
  }
  throw new InterleaveError(`no MLflow run '${options.runId}' in ${root}`);
}

/**
 * Opens an existing run, whatever its status, to add metrics, tags and artifacts (e.g. an
 * evaluation of a finished run) without touching its status or end time. Do not `end` it.
 */
export async function annotateFileStoreRun(options: { uri: string; runId: string }): Promise<FileStoreRun> {
  const root = resolveFileStoreRoot(options.uri);
  for (const experiment of await scanExperiments(root)) {
    const directory = join(experiment.directory, options.runId);
    const text = await readFile(join(directory, META_FILE), 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    return FileStoreRun.attach(experiment, directory, parseMetaYaml(text));
  }
  throw new InterleaveError(`no MLflow run '${options.runId}' in ${root}`);
}

interface RunMeta {
  runName: string;
  status: RunStatus;
  startTime: number;
  endTime: number | null;
}

/** Creates a run in `experiment` of the file store at `root` (which must exist). */
export async function createFileStoreRun(
  experiment: ExperimentInfo,
  options: { runName: string; userId?: string; startTime?: number },
): Promise<FileStoreRun> {
  return FileStoreRun.create(experiment, options.runName, options.userId ?? currentUser(), options.startTime);
}

export class FileStoreRun implements Tracker {
  private ended = false;
  private metaWrites: Promise<void> = Promise.resolve();
  /** Metric folders known to exist (made by this object), so a metric's line is one append. */
  private readonly metricFolders = new Set<string>();
  /** Metric lines per key waiting for the next write (`queueMetricWrite`). */
  private metricLines = new Map<string, string[]>();
  /** The latest metric write, settled or not; the next one starts after it. */
  private metricWrite: Promise<void> = Promise.resolve();
  /** A write that has not started yet: lines logged now join it. */
  private queuedMetricWrite: Promise<void> | undefined;

  private constructor(
    readonly runId: string,
    readonly experimentId: string,
    readonly artifactLocation: string,
    private readonly directory: string,
    private readonly userId: string,
    private readonly meta: RunMeta,
  ) {}

  static async create(
    experiment: ExperimentInfo,
    runName: string,
    userId: string,
    startTime = Date.now(),
  ): Promise<FileStoreRun> {
    const runId = randomUUID().replaceAll('-', '');
    const directory = join(experiment.directory, runId);
    const run = new FileStoreRun(
      runId,
      experiment.experimentId,
      artifactDirectory(experiment, runId),
      directory,
      userId,
      {
        runName,
        status: 'RUNNING',
        startTime,
        endTime: null,
      },
    );
    try {
      await mkdir(directory);
      // MLflow's reader skips a run folder that lacks metrics/, params/ or artifacts/.
      for (const folder of ['metrics', 'params', 'artifacts', 'tags']) await mkdir(join(directory, folder));
      await mkdir(run.artifactLocation, { recursive: true });
    } catch (error) {
      throw new InterleaveError(`cannot create an MLflow run in ${experiment.directory}: ${describeFsError(error)}`);
    }
    await run.writeTags({ [RUN_NAME_TAG]: runName, 'mlflow.user': userId, 'mlflow.source.type': 'LOCAL' });
    // meta.yaml last: readers skip a run folder without it, so they never see a half-made run.
    await run.writeMeta();
    return run;
  }

  static attach(experiment: ExperimentInfo, directory: string, meta: Record<string, unknown>): FileStoreRun {
    const runId = String(meta.run_id);
    const endTime = meta.end_time === undefined || meta.end_time === null ? null : Number(meta.end_time);
    return new FileStoreRun(
      runId,
      experiment.experimentId,
      artifactDirectory(experiment, runId),
      directory,
      String(meta.user_id ?? currentUser()),
      {
        runName: String(meta.run_name ?? ''),
        status: runStatusFromCode(meta.status),
        startTime: Number(meta.start_time),
        endTime,
      },
    );
  }

  static async reopen(
    experiment: ExperimentInfo,
    directory: string,
    meta: Record<string, unknown>,
    afterStep: number,
  ): Promise<FileStoreRun> {
    const runId = String(meta.run_id);
    const status = runStatusFromCode(meta.status);
    if (status === 'FINISHED') throw new InterleaveError(`MLflow run ${runId} has already finished; nothing to resume`);
    const run = new FileStoreRun(
      runId,
      experiment.experimentId,
      artifactDirectory(experiment, runId),
      directory,
      String(meta.user_id ?? currentUser()),
      { runName: String(meta.run_name ?? ''), status: 'RUNNING', startTime: Number(meta.start_time), endTime: null },
    );
    await run.dropMetricsAfter(afterStep);
    await run.writeMeta();
    return run;
  }

  async logParams(params: Record<string, string | number | boolean>): Promise<void> {
    this.assertOpen();
    const entries = Object.entries(params).map(([key, value]) => [key, String(value)] as const);
    for (const [key, value] of entries) {
      validateKey('param', key);
      validateValueLength('param', key, value);
    }
    for (const [key, value] of entries) await this.writeParam(key, value);
  }

  async logMetrics(metrics: Record<string, number>, step: number, timestampMs: number = Date.now()): Promise<void> {
    this.assertOpen();
    if (!Number.isSafeInteger(step)) throw new InterleaveError(`MLflow metric step must be an integer, got ${step}`);
    if (!Number.isSafeInteger(timestampMs) || timestampMs < 0) {
      throw new InterleaveError(`MLflow metric timestamp must be whole epoch milliseconds, got ${timestampMs}`);
    }
    const entries = Object.entries(metrics);
    for (const [key, value] of entries) {
      validateKey('metric', key);
      if (typeof value !== 'number')
        throw new InterleaveError(`MLflow metric '${key}' must be a number, got ${typeof value}`);
    }
    for (const [key, value] of entries) {
      const lines = this.metricLines.get(key);
      const line = formatMetricLine({ timestamp: timestampMs, value, step });
      if (lines === undefined) this.metricLines.set(key, [line]);
      else lines.push(line);
    }
    return this.queueMetricWrite();
  }

  /**
   * Resolves when every metric line queued so far is on disk. Lines wait while a write is under
   * way and then go together, one append per key: a training step on a GPU takes a few
   * milliseconds, and a file append per key per step (open, write, close on libuv's thread pool)
   * took 0.4 ms of the main thread a step and left it idle while it waited (docs/design.md
   * "Metrics written beside training"). Lines of one key still land in step order.
   */
  private queueMetricWrite(): Promise<void> {
    if (this.queuedMetricWrite !== undefined) return this.queuedMetricWrite;
    const queued = this.metricWrite.then(() => {
      this.queuedMetricWrite = undefined;
      const batch = this.metricLines;
      this.metricLines = new Map();
      return this.writeMetricLines(batch);
    });
    this.queuedMetricWrite = queued;
    // The next batch waits for this one whether it succeeds or not; its callers see its failure.
    this.metricWrite = queued.catch(() => undefined);
    return queued;
  }

  private async writeMetricLines(batch: Map<string, string[]>): Promise<void> {
    await Promise.all(
      [...batch].map(([key, lines]) =>
        this.keyedWrite('metric', key, async () => {
          const path = join(this.directory, 'metrics', key);
          const folder = dirname(path);
          if (!this.metricFolders.has(folder)) {
            await mkdir(folder, { recursive: true });
            this.metricFolders.add(folder);
          }
          await appendFile(path, lines.join(''));
        }),
      ),
    );
  }

  async setTags(tags: Record<string, string>): Promise<void> {
    this.assertOpen();
    await this.writeTags(tags);
    const runName = tags[RUN_NAME_TAG];
    // MLflow keeps meta.yaml's run_name in step with the tag; so must we.
    if (runName !== undefined && runName !== this.meta.runName) {
      this.meta.runName = runName;
      await this.writeMeta();
    }
  }

  async logArtifact(relativePath: string, data: Uint8Array | string): Promise<void> {
    this.assertOpen();
    validateArtifactPath(relativePath);
    try {
      await writeFileAtomic(join(this.artifactLocation, relativePath), data);
    } catch (error) {
      throw new InterleaveError(
        `cannot write artifact '${relativePath}' of run ${this.runId}: ${describeFsError(error)}`,
      );
    }
  }

  async logArtifacts(prefix: string, write: (folder: string) => Promise<void>): Promise<void> {
    this.assertOpen();
    validateArtifactPath(prefix);
    const folder = join(this.artifactLocation, prefix);
    try {
      await mkdir(folder, { recursive: true });
    } catch (error) {
      throw new InterleaveError(`cannot write artifacts '${prefix}' of run ${this.runId}: ${describeFsError(error)}`);
    }
    // The writer writes each file atomically into the run's own artifact folder.
    await write(folder);
  }

  async end(status: Exclude<RunStatus, 'RUNNING' | 'SCHEDULED'>): Promise<void> {
    this.assertOpen();
    if (status !== 'FINISHED' && status !== 'FAILED' && status !== 'KILLED') {
      throw new InterleaveError(`a run can end as FINISHED, FAILED or KILLED, not ${String(status)}`);
    }
    this.ended = true;
    // Metric lines before the status: a reader that sees the run ended sees all of its metrics.
    await this.metricWrite;
    this.meta.status = status;
    // A clock stepping back must not give MLflow a run that ends before it starts.
    this.meta.endTime = Math.max(Date.now(), this.meta.startTime);
    await this.writeMeta();
  }

  /** Waits for every metric line logged so far to be on disk; the run stays open. */
  async flush(): Promise<void> {
    await this.metricWrite;
  }

  /**
   * Sets status, end time or name as given (what `runs/update` does), e.g. when a run is
   * copied or its end is replayed; unlike `end`, any status and an explicit end time.
   */
  async update(update: { status?: RunStatus; endTime?: number | null; runName?: string }): Promise<void> {
    if (update.status !== undefined) this.meta.status = update.status;
    if (update.endTime !== undefined) this.meta.endTime = update.endTime;
    if (update.runName !== undefined && update.runName !== this.meta.runName) {
      await this.writeTags({ [RUN_NAME_TAG]: update.runName });
      this.meta.runName = update.runName;
    }
    await this.writeMeta();
  }

  async dropMetricsAfter(step: number): Promise<void> {
    const metrics = join(this.directory, 'metrics');
    const files = await readdir(metrics, { recursive: true, withFileTypes: true });
    for (const file of files) {
      if (!file.isFile()) continue;
      const path = join(file.parentPath, file.name);
      const lines = (await readFile(path, 'utf8')).split('\n').filter((line) => line.trim() !== '');
      const kept = lines.filter((line) => parseMetricLine(line).step <= step);
      if (kept.length !== lines.length) await writeFileAtomic(path, kept.map((line) => `${line}\n`).join(''));
    }
  }

  private assertOpen(): void {
    if (this.ended) throw new Error(`MLflow run ${this.runId} has already ended`);
  }

  private async writeParam(key: string, value: string): Promise<void> {
    const path = join(this.directory, 'params', key);
    await this.keyedWrite('param', key, async () => {
      await mkdir(dirname(path), { recursive: true });
      try {
        // Exclusive create makes write-once hold even between processes.
        await writeFile(path, value, { flag: 'wx' });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const previous = await readFile(path, 'utf8');
        if (previous !== value) {
          throw new InterleaveError(
            `MLflow param '${key}' was already logged as '${previous}' in run ${this.runId}; params are write-once (tried '${value}')`,
          );
        }
      }
    });
  }

  private async writeTags(tags: Record<string, string>): Promise<void> {
    const entries = Object.entries(tags);
    for (const [key, value] of entries) {
      validateKey('tag', key);
      if (typeof value !== 'string') throw new InterleaveError(`MLflow tag '${key}' must be a string`);
      validateValueLength('tag', key, value);
    }
    for (const [key, value] of entries) {
      const path = join(this.directory, 'tags', key);
      await this.keyedWrite('tag', key, async () => {
        // Tags can be rewritten, so they are replaced by rename. The temporary file sits in the
        // run folder, not in `tags/`: MLflow reads every file under `tags/` as a tag, and a
        // leftover from a crash would become one.
        await writeFileAtomic(path, value, { temporaryDirectory: this.directory });
      });
    }
  }

  /** Runs a write under `metrics|params|tags/<key>`, turning file system failures into one-line errors. */
  private async keyedWrite(kind: 'param' | 'metric' | 'tag', key: string, write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (error) {
      if (error instanceof InterleaveError) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EISDIR' || code === 'ENOTDIR' || code === 'EEXIST') {
        throw new InterleaveError(
          `MLflow ${kind} key '${key}' clashes with another key: one name cannot be both a value and a folder of '/'-separated keys`,
        );
      }
      throw new InterleaveError(`cannot write MLflow ${kind} '${key}' of run ${this.runId}: ${describeFsError(error)}`);
    }
  }

  /** Rewrites meta.yaml from the current state; writes are queued so the newest state lands last. */
  private writeMeta(): Promise<void> {
    const write = this.metaWrites.then(() =>
      writeFileAtomic(join(this.directory, META_FILE), toMetaYaml(this.metaRecord())).catch((error: unknown) => {
        throw new InterleaveError(`cannot write meta.yaml of MLflow run ${this.runId}: ${describeFsError(error)}`);
      }),
    );
    this.metaWrites = write.catch(() => undefined);
    return write;
  }

  private metaRecord(): Record<string, unknown> {
    return {
      artifact_uri: toFileUri(this.artifactLocation),
      end_time: this.meta.endTime,
      entry_point_name: '',
      experiment_id: this.experimentId,
      lifecycle_stage: 'active',
      run_id: this.runId,
      run_name: this.meta.runName,
      run_uuid: this.runId,
      source_name: '',
      source_type: SOURCE_TYPE_LOCAL,
      source_version: '',
      start_time: this.meta.startTime,
      status: RUN_STATUS_CODES[this.meta.status],
      tags: [],
      user_id: this.userId,
    };
  }
}

/**
 * Where MLflow puts a run's artifacts: `<experiment artifact_location>/<run_id>/artifacts`,
 * which is normally inside the store but follows the experiment's setting when MLflow made it.
 */
function artifactDirectory(experiment: ExperimentInfo, runId: string): string {
  const location = experiment.artifactLocation || toFileUri(experiment.directory);
  if (!location.startsWith('file:') && !location.startsWith('/')) {
    throw new InterleaveError(
      `MLflow experiment '${experiment.name}' stores artifacts at ${location}; the file store writer can only write local artifacts`,
    );
  }
  const base = location.startsWith('file:') ? fileURLToPath(location) : location;
  return join(base, runId, 'artifacts');
}

/** Like Python's getpass.getuser(), which is what MLflow records. */
function currentUser(): string {
  for (const variable of ['LOGNAME', 'USER', 'LNAME', 'USERNAME']) {
    const value = process.env[variable];
    if (value) return value;
  }
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}
