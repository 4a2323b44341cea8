import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InterleaveError } from '../errors.js';
import {
  type ExperimentInfo,
  ensureStoreRoot,
  findOrCreateExperiment,
  scanExperiments,
} from './file-store-experiments.js';
import { resolveFileStoreRoot } from './file-store-format.js';
import { findRunDirectory, findRuns, findRunsWithTag, readMetricHistory, readRun } from './file-store-reader.js';
import { annotateFileStoreRun, createFileStoreRun, type FileStoreRun } from './mlflow-file-store.js';
import { validateArtifactPath } from './mlflow-names.js';
import type {
  ArtifactEntry,
  CreateRunOptions,
  ExperimentSummary,
  LogBatch,
  MetricPoint,
  RunPage,
  RunQuery,
  RunRecord,
  RunUpdate,
  TrackingStore,
} from './store.js';

/**
 * MLflow's file store behind the `TrackingStore` interface (docs/design.md#mlflow-file-store):
 * the only code that knows the folder layout. Reads never create the store; writes do.
 */
export class FileTrackingStore implements TrackingStore {
  readonly root: string;

  constructor(readonly displayUri: string) {
    this.root = resolveFileStoreRoot(displayUri);
  }

  async listExperiments(): Promise<ExperimentSummary[]> {
    return (await scanExperiments(this.root)).map(summarize);
  }

  async getExperimentByName(name: string): Promise<ExperimentSummary | undefined> {
    return (await this.listExperiments()).find((experiment) => experiment.name === name);
  }

  async getOrCreateExperiment(name: string): Promise<ExperimentSummary> {
    await ensureStoreRoot(this.root);
    return summarize(await findOrCreateExperiment(this.root, name));
  }

  async createRun(experimentId: string, options: CreateRunOptions): Promise<RunRecord> {
    const experiment = (await scanExperiments(this.root)).find((candidate) => candidate.experimentId === experimentId);
    if (!experiment) throw new InterleaveError(`no active MLflow experiment with id ${experimentId} in ${this.root}`);
    const run = await createFileStoreRun(experiment, options);
    if (options.tags && Object.keys(options.tags).length > 0) await run.setTags(options.tags);
    return this.getRun(run.runId);
  }

  async getRun(runId: string): Promise<RunRecord> {
    const record = await readRun(await findRunDirectory(this.root, runId));
    if (!record) throw new InterleaveError(`MLflow run ${runId} in ${this.root} cannot be read`);
    const { directory: _directory, ...run } = record;
    return run;
  }

  async updateRun(runId: string, update: RunUpdate): Promise<void> {
    await (await this.attach(runId)).update(update);
  }

  /** The file store answers in one page: it reads folders, there is nothing to page. */
  async searchRuns(experimentIds: readonly string[], query: RunQuery = {}): Promise<RunPage> {
    const experiments = (await scanExperiments(this.root)).filter((experiment) =>
      experimentIds.includes(experiment.experimentId),
    );
    const runs: RunRecord[] = [];
    for (const experiment of experiments) {
      const found = query.tag
        ? await findRunsWithTag(this.displayUri, experiment.name, query.tag.key, query.tag.value)
        : await findRuns(this.displayUri, experiment.name);
      for (const { directory: _directory, ...run } of found) runs.push(run);
    }
    return { runs: runs.sort((a, b) => a.startTime - b.startTime || a.runId.localeCompare(b.runId)) };
  }

  async logBatch(runId: string, batch: LogBatch): Promise<void> {
    const run = await this.attach(runId);
    const params = batch.params ?? [];
    if (params.length > 0) await run.logParams(Object.fromEntries(params.map(({ key, value }) => [key, value])));
    // Points that share a step and a timestamp are one call of the file writer.
    const groups = new Map<string, { step: number; timestamp: number; values: Record<string, number> }[]>();
    for (const metric of batch.metrics ?? []) {
      const id = `${metric.step} ${metric.timestamp}`;
      const group = groups.get(id) ?? [];
      // A key twice at one step and time is two points: each gets its own write.
      const free = group.find((candidate) => !(metric.key in candidate.values));
      if (free) free.values[metric.key] = metric.value;
      else group.push({ step: metric.step, timestamp: metric.timestamp, values: { [metric.key]: metric.value } });
      groups.set(id, group);
    }
    for (const group of groups.values()) {
      for (const { step, timestamp, values } of group) await run.logMetrics(values, step, timestamp);
    }
    const tags = batch.tags ?? [];
    if (tags.length > 0) await run.setTags(Object.fromEntries(tags.map(({ key, value }) => [key, value])));
  }

  async setTag(runId: string, key: string, value: string): Promise<void> {
    await (await this.attach(runId)).setTags({ [key]: value });
  }

  getMetricHistory(runId: string, key: string): Promise<MetricPoint[]> {
    return readMetricHistory(this.displayUri, runId, key);
  }

  async logArtifact(runId: string, relativePath: string, data: Uint8Array | string): Promise<void> {
    await (await this.attach(runId)).logArtifact(relativePath, data);
  }

  async listArtifacts(runId: string, relativePath = ''): Promise<ArtifactEntry[]> {
    if (relativePath !== '') validateArtifactPath(relativePath);
    const root = await this.artifactRoot(runId);
    const entries = await readdir(join(root, relativePath), { withFileTypes: true }).catch((error: unknown) => {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return [];
      throw error;
    });
    const listed: ArtifactEntry[] = [];
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      // Temporary files of atomic writes in progress are not artifacts yet.
      if (entry.name.startsWith('.') && entry.name.endsWith('.tmp')) continue;
      const path = relativePath === '' ? entry.name : `${relativePath}/${entry.name}`;
      if (entry.isDirectory()) listed.push({ path, isDir: true });
      else listed.push({ path, isDir: false, size: (await stat(join(root, path))).size });
    }
    return listed;
  }

  async downloadArtifact(runId: string, relativePath: string): Promise<Uint8Array> {
    validateArtifactPath(relativePath);
    const path = join(await this.artifactRoot(runId), relativePath);
    try {
      return new Uint8Array(await readFile(path));
    } catch {
      throw new InterleaveError(`run ${runId} has no artifact '${relativePath}' (${path})`);
    }
  }

  async truncateMetricsAfter(runId: string, step: number): Promise<void> {
    await (await this.attach(runId)).dropMetricsAfter(step);
  }

  /** The run's local artifact folder, for code that must hand a path to the user. */
  async artifactRoot(runId: string): Promise<string> {
    const run = await this.getRun(runId);
    if (!run.artifactUri.startsWith('file:')) {
      throw new InterleaveError(`run ${runId} keeps its artifacts at ${run.artifactUri}, not in a local folder`);
    }
    return fileURLToPath(run.artifactUri);
  }

  private attach(runId: string): Promise<FileStoreRun> {
    return annotateFileStoreRun({ uri: this.displayUri, runId });
  }
}

function summarize(experiment: ExperimentInfo): ExperimentSummary {
  return {
    experimentId: experiment.experimentId,
    name: experiment.name,
    artifactLocation: experiment.artifactLocation,
    lifecycleStage: experiment.lifecycleStage,
  };
}
