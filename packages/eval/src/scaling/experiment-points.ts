import { findRuns, type RunRecord, readMetricHistory, requireExperiment } from '@interleave/core';
import type { ChinchillaPoint } from './chinchilla.js';
import type { ComputePoint } from './compute-law.js';

/** Run conventions the fits read (see the project context: training writes these). */
export const ARCHITECTURE_TAG = 'interleave.architecture';
export const PARAMETERS_PARAM = 'model.parameters';
export const COMPUTE_METRIC = 'compute/flops';
export const TOKENS_METRIC = 'compute/tokens';
export const DEFAULT_LOSS_METRIC = 'eval/loss';

/**
 * Runs that hold no model — a report's own run, a sweep's parent run — are left out of a fit
 * without a notice: every swept or reported experiment has them, and they are not data.
 */
const BOOKKEEPING_TAGS: Readonly<Record<string, string>> = {
  'interleave.kind': 'report',
  'interleave.sweep_role': 'parent',
};

export interface ExperimentPointOptions {
  /** The metric whose last value is the run's loss (default `eval/loss`). */
  lossMetric?: string;
}

/** A run that gave no point, and why (unfinished, a metric never logged, ...). */
export interface SkippedRun {
  runId: string;
  runName: string;
  reason: string;
}

export interface ExperimentComputePoints {
  /** Points by `interleave.architecture`, architectures in order of their first run. */
  groups: Map<string, ComputePoint[]>;
  skipped: SkippedRun[];
}

export interface ExperimentChinchillaPoints {
  points: ChinchillaPoint[];
  skipped: SkippedRun[];
}

/**
 * One (compute, loss) point per FINISHED run of `experiment`: compute = last `compute/flops`,
 * loss = last value of the loss metric, grouped by the run's architecture tag.
 */
export async function readExperimentComputePoints(
  uri: string,
  experiment: string,
  options: ExperimentPointOptions = {},
): Promise<ExperimentComputePoints> {
  const lossMetric = options.lossMetric ?? DEFAULT_LOSS_METRIC;
  const groups = new Map<string, ComputePoint[]>();
  const skipped: SkippedRun[] = [];
  for (const run of await finishedRuns(uri, experiment, skipped)) {
    const architecture = run.tags[ARCHITECTURE_TAG];
    if (architecture === undefined) {
      skipped.push(skip(run, `no ${ARCHITECTURE_TAG} tag`));
      continue;
    }
    const compute = await lastValue(uri, run, COMPUTE_METRIC);
    const loss = await lastValue(uri, run, lossMetric);
    const problem = missing(COMPUTE_METRIC, compute) ?? missing(lossMetric, loss);
    if (problem !== undefined) {
      skipped.push(skip(run, problem));
      continue;
    }
    const points = groups.get(architecture) ?? [];
    points.push({ compute: compute as number, loss: loss as number });
    groups.set(architecture, points);
  }
  return { groups, skipped };
}

/**
 * One (N, D, loss) point per FINISHED run: N = param `model.parameters`, D = last
 * `compute/tokens`, loss = last value of the loss metric.
 */
export async function readExperimentChinchillaPoints(
  uri: string,
  experiment: string,
  options: ExperimentPointOptions = {},
): Promise<ExperimentChinchillaPoints> {
  const lossMetric = options.lossMetric ?? DEFAULT_LOSS_METRIC;
  const points: ChinchillaPoint[] = [];
  const skipped: SkippedRun[] = [];
  for (const run of await finishedRuns(uri, experiment, skipped)) {
    const text = run.params[PARAMETERS_PARAM];
    const n = text === undefined ? undefined : Number(text);
    const d = await lastValue(uri, run, TOKENS_METRIC);
    const loss = await lastValue(uri, run, lossMetric);
    const problem =
      (text === undefined ? `no param ${PARAMETERS_PARAM}` : missing(`param ${PARAMETERS_PARAM}`, n)) ??
      missing(TOKENS_METRIC, d) ??
      missing(lossMetric, loss);
    if (problem !== undefined) {
      skipped.push(skip(run, problem));
      continue;
    }
    points.push({ n: n as number, d: d as number, loss: loss as number });
  }
  return { points, skipped };
}

async function finishedRuns(uri: string, experiment: string, skipped: SkippedRun[]): Promise<RunRecord[]> {
  await requireExperiment(uri, experiment);
  const runs = (await findRuns(uri, experiment)).filter(
    (run) => !Object.entries(BOOKKEEPING_TAGS).some(([tag, value]) => run.tags[tag] === value),
  );
  for (const run of runs) if (run.status !== 'FINISHED') skipped.push(skip(run, `status ${run.status}`));
  return runs.filter((run) => run.status === 'FINISHED');
}

/** The value logged at the highest step (the later line on ties); undefined if never logged. */
async function lastValue(uri: string, run: RunRecord, key: string): Promise<number | undefined> {
  if (!run.metricKeys.includes(key)) return undefined;
  let last: { value: number; step: number } | undefined;
  for (const point of await readMetricHistory(uri, run.runId, key)) {
    if (last === undefined || point.step >= last.step) last = point;
  }
  return last?.value;
}

/** Why `value` cannot be used as a scaling-law coordinate, or undefined if it can. */
function missing(name: string, value: number | undefined): string | undefined {
  if (value === undefined) return `no ${name}`;
  if (!(Number.isFinite(value) && value > 0)) return `${name} is ${value}, not a positive number`;
  return undefined;
}

function skip(run: RunRecord, reason: string): SkippedRun {
  return { runId: run.runId, runName: run.runName, reason };
}
