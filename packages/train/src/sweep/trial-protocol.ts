import type { TrialSpec } from './plan.js';

/** A trial as it is handed to a worker: the spec plus where this sweep's run and logs live. */
export interface TrialJob extends TrialSpec {
  /** The sweep's parent MLflow run; the trial's run points at it with `mlflow.parentRunId`. */
  readonly parentRunId: string;
  /** Where the trial's training log goes (a file in the parent run's artifacts); none: discarded. */
  readonly logFile?: string;
  /** An earlier run of this trial to continue from its last checkpoint (a trial that was killed). */
  readonly resumeRunId?: string;
}

/** How one attempt at a trial ended. */
export interface TrialOutcome {
  readonly trialId: string;
  readonly status: 'FINISHED' | 'FAILED' | 'KILLED';
  /** Absent when the attempt died before its MLflow run existed. */
  readonly runId?: string;
  readonly seconds: number;
  readonly accuracy?: number;
  readonly loss?: number;
  /** Why it failed, or why it was killed. */
  readonly error?: string;
  /**
   * The trial itself is at fault (a loss that became NaN, a config the worker rejects): another
   * attempt would fail the same way, so a queue should not retry it.
   */
  readonly deterministic?: boolean;
}

/** Parent → trial process. */
export type ToTrialProcess =
  | { readonly type: 'run'; readonly job: TrialJob }
  | { readonly type: 'stop' }
  | { readonly type: 'finish-reply'; readonly runId: string; readonly reason?: string };

/** Trial process → parent. */
export type FromTrialProcess =
  | { readonly type: 'ready' }
  /** The run trained every step: may it be marked FINISHED? (Only one run of a trial may.) */
  | { readonly type: 'finish-request'; readonly runId: string }
  | { readonly type: 'outcome'; readonly outcome: TrialOutcome };
