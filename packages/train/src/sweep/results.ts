import { type RunRecord, readMetricHistory } from '@interleave/core';
import { formatDuration } from '../trainer/progress.js';
import { describeParams, formatTable, formatValue } from './format.js';
import type { SweepPlan, TrialSpec } from './plan.js';
import type { TrialOutcome } from './trial-protocol.js';
import { finishedRunOf, SWEEP_TAGS } from './trial-runs.js';

/** Where a trial stands, as MLflow records it ('MISSING': no run yet). */
export type TrialStatus = 'FINISHED' | 'FAILED' | 'KILLED' | 'RUNNING' | 'MISSING';

export interface TrialResult {
  readonly index: number;
  readonly trialId: string;
  readonly params: Readonly<Record<string, unknown>>;
  readonly status: TrialStatus;
  /** The FINISHED run, else the latest attempt's. */
  readonly runId?: string;
  /** How many runs (attempts) the trial has in MLflow. */
  readonly attempts: number;
  readonly evalAccuracy?: number;
  readonly evalLoss?: number;
  readonly trainLoss?: number;
  readonly seconds?: number;
  /** Why it is not FINISHED. */
  readonly error?: string;
}

/** The sweep's results, read back from MLflow (the record of truth), with this session's failure reasons. */
export async function collectResults(
  plan: SweepPlan,
  runsByTrial: ReadonlyMap<string, readonly RunRecord[]>,
  outcomes: ReadonlyMap<string, TrialOutcome | string> = new Map(),
): Promise<TrialResult[]> {
  const results: TrialResult[] = [];
  for (const trial of plan.trials) {
    const runs = runsByTrial.get(trial.trialId) ?? [];
    const run = finishedRunOf(runs) ?? runs.at(-1);
    const outcome = outcomes.get(trial.trialId);
    const reported = typeof outcome === 'string' ? outcome : outcome?.error;
    const base = { index: trial.index, trialId: trial.trialId, params: trial.params, attempts: runs.length };
    if (run === undefined) {
      results.push({ ...base, status: 'MISSING', ...(reported ? { error: reported } : {}) });
      continue;
    }
    const status = run.status === 'SCHEDULED' ? 'RUNNING' : run.status;
    const error =
      status === 'FINISHED' ? undefined : (reported ?? run.tags[SWEEP_TAGS.error] ?? run.tags[SWEEP_TAGS.killedReason]);
    results.push({
      ...base,
      status,
      runId: run.runId,
      ...withValue('evalAccuracy', await lastMetric(trial, run, 'eval/accuracy')),
      ...withValue('evalLoss', await lastMetric(trial, run, 'eval/loss')),
      ...withValue('trainLoss', await lastMetric(trial, run, 'train/loss')),
      ...withValue('seconds', run.endTime === null ? undefined : (run.endTime - run.startTime) / 1000),
      ...withValue('error', error),
    });
  }
  return results;
}

function withValue<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

async function lastMetric(trial: TrialSpec, run: RunRecord, key: string): Promise<number | undefined> {
  if (!run.metricKeys.includes(key)) return undefined;
  return (await readMetricHistory(trial.tracking.uri, run.runId, key)).at(-1)?.value;
}

const METRIC_COLUMNS = ['eval_accuracy', 'eval_loss', 'train_loss', 'seconds'] as const;

/** One row per trial: its parameters, status, run and final metrics. */
export function resultsCsv(plan: SweepPlan, results: readonly TrialResult[]): string {
  const header = [
    'trial',
    ...plan.parameterKeys,
    'status',
    'run_id',
    ...METRIC_COLUMNS,
    'attempts',
    'trial_id',
    'error',
  ];
  const rows = results.map((result) => [
    result.index,
    ...plan.parameterKeys.map((key) => result.params[key]),
    result.status,
    result.runId,
    result.evalAccuracy,
    result.evalLoss,
    result.trainLoss,
    result.seconds,
    result.attempts,
    result.trialId,
    result.error,
  ]);
  return `${[header, ...rows].map((row) => row.map(csvCell).join(',')).join('\n')}\n`;
}

function csvCell(value: unknown): string {
  if (value === undefined || value === null) return '';
  const text = typeof value === 'string' ? value : typeof value === 'number' ? String(value) : JSON.stringify(value);
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function resultsJson(plan: SweepPlan, results: readonly TrialResult[], parentRunId: string): string {
  const sweep = {
    id: plan.sweepId,
    name: plan.name,
    file: plan.file,
    method: plan.sweep.method,
    parameters: plan.sweep.parameters,
    parent_run_id: parentRunId,
    tracking: plan.tracking,
  };
  const trials = results.map((result) => ({
    trial: result.index,
    trial_id: result.trialId,
    params: result.params,
    status: result.status,
    run_id: result.runId ?? null,
    attempts: result.attempts,
    eval_accuracy: result.evalAccuracy ?? null,
    eval_loss: result.evalLoss ?? null,
    train_loss: result.trainLoss ?? null,
    seconds: result.seconds ?? null,
    error: result.error ?? null,
  }));
  return `${JSON.stringify({ sweep, trials }, null, 2)}\n`;
}

/** Tables this long are cut to the best and the failed trials; the CSV has them all. */
const FULL_TABLE_LIMIT = 30;
const BEST_SHOWN = 10;

/** The summary printed at the end: a table, the best trial, and what failed and why. */
export function summarize(plan: SweepPlan, results: readonly TrialResult[]): string {
  const byAccuracy = [...results]
    .filter((result) => result.status === 'FINISHED' && result.evalAccuracy !== undefined)
    .sort((a, b) => (b.evalAccuracy as number) - (a.evalAccuracy as number));
  const failed = results.filter((result) => result.status !== 'FINISHED');
  let shown = results;
  let note = '';
  if (results.length > FULL_TABLE_LIMIT) {
    const picked = new Set([...byAccuracy.slice(0, BEST_SHOWN), ...failed.slice(0, BEST_SHOWN)]);
    shown = results.filter((result) => picked.has(result));
    note = `\n(${shown.length} of ${results.length} trials shown: the ${BEST_SHOWN} most accurate and the first unfinished ones; the CSV has every trial)`;
  }
  const header = ['trial', ...plan.parameterKeys, 'status', 'eval acc', 'eval loss', 'time'];
  const rows = shown.map((result) => [
    String(result.index),
    ...plan.parameterKeys.map((key) => formatValue(result.params[key], 24)),
    result.status,
    result.evalAccuracy?.toFixed(4) ?? '',
    result.evalLoss?.toFixed(4) ?? '',
    result.seconds === undefined ? '' : formatDuration(result.seconds),
  ]);
  const lines = [formatTable(header, rows) + note];
  const best = byAccuracy[0];
  if (best !== undefined) {
    lines.push(
      `best: trial ${best.index} (${describeParams(best.params)}): eval accuracy ${best.evalAccuracy?.toFixed(4)}, run ${best.runId}`,
    );
  }
  for (const result of failed) {
    lines.push(
      `trial ${result.index} ${result.status}${result.runId ? ` (run ${result.runId})` : ''}: ${describeParams(result.params)}: ${result.error ?? (result.status === 'MISSING' ? 'not run yet' : 'no reason recorded')}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
