/** MLflow run status names (docs/design.md#mlflow-file-store). */
export type RunStatus = 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';

/**
 * One MLflow run being written. Implementations: the file store (a local path) and a tracking
 * server (http/https, `RestRun`). Params are write-once; metric and param keys may contain `/`.
 */
export interface Tracker {
  readonly runId: string;
  readonly experimentId: string;
  /** The run's artifact location: a local folder (file store) or the server's `mlflow-artifacts:` URI. */
  readonly artifactLocation: string;
  logParams(params: Record<string, string | number | boolean>): Promise<void>;
  logMetrics(metrics: Record<string, number>, step: number, timestampMs?: number): Promise<void>;
  setTags(tags: Record<string, string>): Promise<void>;
  /** Writes `data` to `artifacts/<relativePath>` atomically (temp file + rename). */
  logArtifact(relativePath: string, data: Uint8Array | string): Promise<void>;
  /**
   * Logs the files that `write` puts into the folder it is given as artifacts under `prefix`
   * (a checkpoint). The store chooses the folder: the file store hands out the artifact folder
   * itself (no copy of large files), a server a temporary folder whose files are then uploaded.
   */
  logArtifacts?(prefix: string, write: (folder: string) => Promise<void>): Promise<void>;
  end(status: Exclude<RunStatus, 'RUNNING' | 'SCHEDULED'>): Promise<void>;
  /**
   * Sends what was logged and waits for it (a run on a tracking server logs in the background);
   * for a run opened to annotate it, this is the end. The file store waits for the metric lines
   * still being written (`logMetrics` calls not awaited).
   */
  flush?(): Promise<void>;
}

export interface OpenRunOptions {
  /** `./mlruns`, an absolute path, or `file:///...`. */
  uri: string;
  experiment: string;
  runName: string;
  /** Written as `mlflow.user`; defaults to the OS user. */
  user?: string;
}

export interface ResumeRunOptions {
  uri: string;
  /** The run to continue (its 32-hex id). */
  runId: string;
  /**
   * The step of the checkpoint being resumed: metric points logged after it (by the attempt
   * that crashed) are dropped, so the resumed run's history has each step once.
   */
  afterStep: number;
}
