import { InterleaveError } from '../../errors.js';
import { validateArtifactPath, validateExperimentName } from '../mlflow-names.js';
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
} from '../store.js';
import type { RunStatus } from '../tracker.js';
import { MlflowApiError } from './errors.js';
import { type HttpClientOptions, MlflowHttpClient } from './http-client.js';
import { splitLogBatch } from './log-batch-limits.js';

/** Runs per `runs/search` page and points per `metrics/get-history` page. */
const SEARCH_PAGE_SIZE = 1000;
const HISTORY_PAGE_SIZE = 25_000;

export interface RestStoreOptions extends HttpClientOptions {
  /** Runs and experiments per search page (default 1000). */
  searchPageSize?: number;
  /** Points per metric-history page (default 25,000). */
  historyPageSize?: number;
}

interface ApiExperiment {
  experiment_id: string;
  name: string;
  artifact_location?: string;
  lifecycle_stage?: string;
}

interface ApiRun {
  info: {
    run_id: string;
    run_name?: string;
    experiment_id: string;
    user_id?: string;
    status?: RunStatus;
    start_time?: number | string;
    end_time?: number | string;
    artifact_uri?: string;
    lifecycle_stage?: string;
  };
  data?: {
    metrics?: ApiMetric[];
    params?: { key: string; value: string }[];
    tags?: { key: string; value: string }[];
  };
}

interface ApiMetric {
  key: string;
  value: number | string;
  timestamp: number | string;
  step?: number | string;
}

/**
 * An MLflow tracking server behind the `TrackingStore` interface, over REST API 2.0
 * (docs/design.md#mlflow-tracking-stores); artifacts go through the server's artifact proxy
 * (`mlflow server --serve-artifacts`, the default since MLflow 2.0).
 */
export class RestTrackingStore implements TrackingStore {
  readonly client: MlflowHttpClient;
  private readonly artifactRoots = new Map<string, string>();

  private readonly searchPageSize: number;
  private readonly historyPageSize: number;

  constructor(uri: string, options: RestStoreOptions = {}) {
    this.client = new MlflowHttpClient(uri, options);
    this.searchPageSize = options.searchPageSize ?? SEARCH_PAGE_SIZE;
    this.historyPageSize = options.historyPageSize ?? HISTORY_PAGE_SIZE;
  }

  get displayUri(): string {
    return this.client.displayUri;
  }

  async listExperiments(): Promise<ExperimentSummary[]> {
    const experiments: ExperimentSummary[] = [];
    let pageToken: string | undefined;
    do {
      const page = await this.client.api<{ experiments?: ApiExperiment[]; next_page_token?: string }>(
        'POST',
        'experiments/search',
        { json: { max_results: this.searchPageSize, page_token: pageToken, view_type: 'ACTIVE_ONLY' } },
      );
      experiments.push(...(page.experiments ?? []).map(toExperiment));
      pageToken = page.next_page_token || undefined;
    } while (pageToken);
    return experiments;
  }

  async getExperimentByName(name: string): Promise<ExperimentSummary | undefined> {
    try {
      const answer = await this.client.api<{ experiment: ApiExperiment }>('GET', 'experiments/get-by-name', {
        query: { experiment_name: name },
      });
      const experiment = toExperiment(answer.experiment);
      return experiment.lifecycleStage === 'active' ? experiment : undefined;
    } catch (error) {
      if (error instanceof MlflowApiError && error.errorCode === 'RESOURCE_DOES_NOT_EXIST') return undefined;
      throw error;
    }
  }

  async getOrCreateExperiment(name: string): Promise<ExperimentSummary> {
    validateExperimentName(name);
    const existing = await this.getExperimentByName(name);
    if (existing) return existing;
    try {
      await this.client.api('POST', 'experiments/create', { json: { name } });
    } catch (error) {
      // Another process created it between the two calls: use theirs.
      if (!(error instanceof MlflowApiError && error.errorCode === 'RESOURCE_ALREADY_EXISTS')) throw error;
    }
    const created = await this.getExperimentByName(name);
    if (!created) {
      throw new InterleaveError(
        `MLflow experiment '${name}' on ${this.displayUri} is deleted; restore it or choose another name`,
      );
    }
    return created;
  }

  async createRun(experimentId: string, options: CreateRunOptions): Promise<RunRecord> {
    const tags = Object.entries(options.tags ?? {}).map(([key, value]) => ({ key, value }));
    const answer = await this.client.api<{ run: ApiRun }>('POST', 'runs/create', {
      json: {
        experiment_id: experimentId,
        run_name: options.runName,
        start_time: options.startTime ?? Date.now(),
        user_id: options.userId,
        tags,
      },
      // A retried create could make a second run: the caller sees the failure instead.
      idempotent: false,
    });
    return toRunRecord(answer.run);
  }

  async getRun(runId: string): Promise<RunRecord> {
    try {
      const answer = await this.client.api<{ run: ApiRun }>('GET', 'runs/get', { query: { run_id: runId } });
      return toRunRecord(answer.run);
    } catch (error) {
      if (error instanceof MlflowApiError && error.errorCode === 'RESOURCE_DOES_NOT_EXIST') {
        throw new InterleaveError(`MLflow run ${runId} not found on ${this.displayUri}`);
      }
      throw error;
    }
  }

  async updateRun(runId: string, update: RunUpdate): Promise<void> {
    await this.client.api('POST', 'runs/update', {
      json: { run_id: runId, status: update.status, end_time: update.endTime ?? undefined, run_name: update.runName },
    });
  }

  async searchRuns(experimentIds: readonly string[], query: RunQuery = {}): Promise<RunPage> {
    const tag = query.tag;
    // MLflow's filter can only compare a tag with a value; "has the tag" is checked here.
    const filter =
      tag?.value === undefined ? undefined : `tags.${quoteIdentifier(tag.key)} = ${quoteString(tag.value)}`;
    const page = await this.client.api<{ runs?: ApiRun[]; next_page_token?: string }>('POST', 'runs/search', {
      json: {
        experiment_ids: experimentIds,
        filter,
        max_results: query.maxResults ?? this.searchPageSize,
        order_by: ['attributes.start_time ASC'],
        page_token: query.pageToken,
        run_view_type: 'ACTIVE_ONLY',
      },
    });
    const runs = (page.runs ?? []).map(toRunRecord).filter((run) => tag === undefined || tag.key in run.tags);
    return { runs, nextPageToken: page.next_page_token || undefined };
  }

  async logBatch(runId: string, batch: LogBatch): Promise<void> {
    for (const part of splitLogBatch(batch)) {
      await this.client.api('POST', 'runs/log-batch', {
        json: {
          run_id: runId,
          metrics: (part.metrics ?? []).map((metric) => ({ ...metric, value: encodeDouble(metric.value) })),
          params: part.params ?? [],
          tags: part.tags ?? [],
        },
        idempotent: false,
      });
    }
  }

  async setTag(runId: string, key: string, value: string): Promise<void> {
    await this.client.api('POST', 'runs/set-tag', { json: { run_id: runId, key, value } });
  }

  async getMetricHistory(runId: string, key: string): Promise<MetricPoint[]> {
    const points: MetricPoint[] = [];
    let pageToken: string | undefined;
    do {
      const page = await this.client.api<{ metrics?: ApiMetric[]; next_page_token?: string }>(
        'GET',
        'metrics/get-history',
        { query: { run_id: runId, metric_key: key, max_results: this.historyPageSize, page_token: pageToken } },
      );
      for (const metric of page.metrics ?? []) points.push(toPoint(metric));
      pageToken = page.next_page_token || undefined;
    } while (pageToken);
    return points;
  }

  async logArtifact(runId: string, relativePath: string, data: Uint8Array | string): Promise<void> {
    validateArtifactPath(relativePath);
    const body = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    // A PUT replaces the whole file, so sending it again is harmless.
    await this.client.request('PUT', artifactEndpoint(`${await this.artifactRoot(runId)}/${relativePath}`), {
      body,
    });
  }

  async listArtifacts(runId: string, relativePath = ''): Promise<ArtifactEntry[]> {
    if (relativePath !== '') validateArtifactPath(relativePath);
    const root = await this.artifactRoot(runId);
    const listed = (await this.client.request('GET', '/api/2.0/mlflow-artifacts/artifacts', {
      query: { path: relativePath === '' ? root : `${root}/${relativePath}` },
    })) as { files?: { path: string; is_dir?: boolean; file_size?: number | string }[] };
    return (listed.files ?? [])
      .map((file) => {
        // The proxy names entries relative to the listed folder.
        const name = file.path.split('/').pop() as string;
        const path = relativePath === '' ? name : `${relativePath}/${name}`;
        return file.is_dir
          ? { path, isDir: true }
          : { path, isDir: false, size: file.file_size === undefined ? undefined : Number(file.file_size) };
      })
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  async downloadArtifact(runId: string, relativePath: string): Promise<Uint8Array> {
    validateArtifactPath(relativePath);
    try {
      return (await this.client.request('GET', artifactEndpoint(`${await this.artifactRoot(runId)}/${relativePath}`), {
        binary: true,
      })) as Uint8Array;
    } catch (error) {
      if (error instanceof MlflowApiError && (error.status === 404 || error.errorCode === 'RESOURCE_DOES_NOT_EXIST')) {
        throw new InterleaveError(`run ${runId} has no artifact '${relativePath}' on ${this.displayUri}`);
      }
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.client.close();
  }

  /** The run's artifact root as a path of the server's artifact proxy. */
  private async artifactRoot(runId: string): Promise<string> {
    const known = this.artifactRoots.get(runId);
    if (known !== undefined) return known;
    const run = await this.getRun(runId);
    const match = /^mlflow-artifacts:(?:\/\/[^/]*)?\/*(.*)$/.exec(run.artifactUri);
    if (!match) {
      throw new InterleaveError(
        `run ${runId} on ${this.displayUri} keeps artifacts at ${run.artifactUri}, which the client cannot reach; start the server with --serve-artifacts (its default) so artifacts go through it`,
      );
    }
    const root = (match[1] as string).replace(/\/+$/, '');
    this.artifactRoots.set(runId, root);
    return root;
  }
}

function artifactEndpoint(path: string): string {
  return `/api/2.0/mlflow-artifacts/artifacts/${path.split('/').map(encodeURIComponent).join('/')}`;
}

function toExperiment(experiment: ApiExperiment): ExperimentSummary {
  return {
    experimentId: String(experiment.experiment_id),
    name: experiment.name,
    artifactLocation: experiment.artifact_location ?? '',
    lifecycleStage: experiment.lifecycle_stage ?? 'active',
  };
}

function toRunRecord(run: ApiRun): RunRecord {
  const info = run.info;
  const pairs = (list: { key: string; value: string }[] | undefined) =>
    Object.fromEntries((list ?? []).map(({ key, value }) => [key, value ?? '']));
  const tags = pairs(run.data?.tags);
  return {
    runId: info.run_id,
    runName: info.run_name ?? tags['mlflow.runName'] ?? '',
    experimentId: String(info.experiment_id),
    status: info.status ?? 'RUNNING',
    startTime: Number(info.start_time ?? 0),
    endTime: info.end_time === undefined || info.end_time === null ? null : Number(info.end_time),
    userId: info.user_id ?? '',
    lifecycleStage: info.lifecycle_stage ?? 'active',
    artifactUri: info.artifact_uri ?? '',
    params: pairs(run.data?.params),
    tags,
    metricKeys: [...new Set((run.data?.metrics ?? []).map((metric) => metric.key))].sort(),
  };
}

function toPoint(metric: ApiMetric): MetricPoint {
  return { timestamp: Number(metric.timestamp), value: decodeDouble(metric.value), step: Number(metric.step ?? 0) };
}

/** JSON has no NaN or ±Infinity; MLflow's protobuf JSON spells them as these strings. */
export function encodeDouble(value: number): number | string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return 'Infinity';
  if (value === Number.NEGATIVE_INFINITY) return '-Infinity';
  return value;
}

function decodeDouble(value: number | string): number {
  return typeof value === 'number' ? value : Number(value);
}

/** A key in MLflow's search grammar: backquoted, so `.` and `/` are part of it. */
function quoteIdentifier(key: string): string {
  if (key.includes('`'))
    throw new InterleaveError(`tag key ${JSON.stringify(key)} cannot be searched (it holds a backquote)`);
  return `\`${key}\``;
}

function quoteString(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}
