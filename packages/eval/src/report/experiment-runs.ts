import { findRuns, InterleaveError, type RunRecord, type RunStatus, requireExperiment } from '@interleave/core';
import { readLastStep, readLastValue } from './metric-values.js';

/** The tag that marks a report's own MLflow run, so that a later report does not read it as data. */
export const REPORT_KIND_TAG = 'interleave.kind';
export const REPORT_KIND = 'report';

const ARCHITECTURE_TAG = 'interleave.architecture';
const BACKEND_TAG = 'interleave.backend';

const MQAR_METRIC = /^eval\/mqar\/L(\d+)_K(\d+)\/accuracy$/;
const INDUCTION_METRIC = /^eval\/induction\/len_(\d+)\/accuracy$/;

/** One MQAR evaluation: accuracy at sequence length `seqLen` with `numKvPairs` key-value pairs. */
export interface MqarPoint {
  seqLen: number;
  numKvPairs: number;
  accuracy: number;
}

/** One induction-heads evaluation at sequence length `length`. */
export interface InductionPoint {
  length: number;
  accuracy: number;
  /** The 95% Wilson interval and the examples behind it, for runs that logged them. */
  interval?: { low: number; high: number; examples: number };
}

/** A run reduced to what a report shows: final metric values and the params it groups by. */
export interface ReportRun {
  runId: string;
  runName: string;
  /**
   * The `interleave.architecture` tag (or the run name for runs that predate it), followed by the
   * model settings that tell runs of that architecture apart, e.g. `attention+attention (init=zoology)`
   * (`labelModelVariants`).
   */
  architecture: string;
  status: RunStatus;
  startTime: number;
  params: Record<string, string>;
  backend: string | undefined;
  dModel: number | undefined;
  /** The training task's sequence length (`task.seq_len`). */
  seqLen: number | undefined;
  parameters: number | undefined;
  /** The configured `train.steps`. */
  steps: number | undefined;
  /** The last step the run logged a training loss at (below `steps` for a stopped run). */
  stepsRun: number | undefined;
  evalAccuracy: number | undefined;
  evalLoss: number | undefined;
  /** Cumulative training FLOPs at the last logged step. */
  computeFlops: number | undefined;
  /** The peak learning rate (`train.optimizer.lr`). */
  learningRate: number | undefined;
  /** The recurrent state per sequence at the training length (`model.state_bytes_per_sequence`). */
  stateBytes: number | undefined;
  /** Whether that state grows with the sequence (full attention, Hyena): then it holds at `seqLen` only. */
  stateGrows: boolean;
  mqar: MqarPoint[];
  induction: InductionPoint[];
}

/**
 * Reads every run of `experiment` except earlier reports. Unknown experiments and experiments
 * without runs are the user's mistake (a typo, the wrong `--uri`), so they get a message that
 * lists what does exist.
 */
export async function loadExperimentRuns(uri: string, experiment: string): Promise<ReportRun[]> {
  await requireExperiment(uri, experiment);
  const records = (await findRuns(uri, experiment)).filter((run) => run.tags[REPORT_KIND_TAG] !== REPORT_KIND);
  if (records.length === 0)
    throw new InterleaveError(`MLflow experiment '${experiment}' in ${uri} has no runs to report`);
  const runs: ReportRun[] = [];
  for (const record of records) runs.push(await summarizeRun(uri, record));
  labelModelVariants(runs);
  return runs;
}

/** Model params shown in their own columns, or derived from the others: never a variant's name. */
const NOT_A_VARIANT = new Set([
  'model.d_model',
  'model.parameters',
  'model.state_bytes_per_sequence',
  'model.state_grows_with_length',
]);

/**
 * Runs of one architecture that differ in other model settings (a block's `init`, d_state, a
 * window, ...) are different models: each run's label gets the settings that vary among runs of
 * its architecture at the same d_model and seq_len (settings that follow those columns, such as
 * learned positions sized to the length, are not variants), `name=value` (`default` where a run
 * left it unset), so that no table or plot mixes them under one name. A setting is named by its
 * last key, or by its whole path under `model.` where two varying settings share a last key.
 * Runs of one model from different config files (the config's `name`: a curriculum, another
 * training protocol) are told apart the same way, as `config=<name>` without the part all their
 * names share, so that "the best run" of an architecture never silently picks another protocol.
 */
export function labelModelVariants(runs: ReportRun[]): void {
  const groupsOf = (key: (run: ReportRun) => string, members: ReportRun[]) => {
    const groups = new Map<string, ReportRun[]>();
    for (const run of members) groups.set(key(run), [...(groups.get(key(run)) ?? []), run]);
    return [...groups.values()];
  };
  for (const group of groupsOf((run) => run.architecture, runs)) {
    const varying = new Set<string>();
    let configsVary = false;
    for (const cell of groupsOf((run) => `${run.dModel}|${run.seqLen}`, group)) {
      const keys = new Set(
        cell.flatMap((run) =>
          Object.keys(run.params).filter((key) => key.startsWith('model.') && !NOT_A_VARIANT.has(key)),
        ),
      );
      for (const key of keys) if (new Set(cell.map((run) => run.params[key] ?? '')).size > 1) varying.add(key);
      if (new Set(cell.map((run) => run.params.name ?? '')).size > 1) configsVary = true;
    }
    if (varying.size === 0 && !configsVary) continue;
    const sorted = [...varying].sort();
    const lastKey = (key: string) => key.slice(key.lastIndexOf('.') + 1);
    const names = sorted.map((key) =>
      sorted.filter((other) => lastKey(other) === lastKey(key)).length > 1 ? key.slice('model.'.length) : lastKey(key),
    );
    const configName = configsVary ? distinctParts(group.map((run) => run.params.name ?? '')) : undefined;
    for (const run of group) {
      const settings = sorted.map((key, index) => `${names[index]}=${run.params[key] ?? 'default'}`);
      if (configName !== undefined) settings.push(`config=${configName.get(run.params.name ?? '') || 'unnamed'}`);
      run.architecture = `${run.architecture} (${settings.join(', ')})`;
    }
  }
}

/**
 * Each name without the leading words (`-`-separated) that every name shares:
 * mamba-induction-mamba, mamba-induction-mamba-short-gaps → mamba, mamba-short-gaps.
 */
function distinctParts(names: readonly string[]): Map<string, string> {
  const split = [...new Set(names)].map((name) => name.split('-'));
  let shared = 0;
  const shortest = Math.min(...split.map((words) => words.length));
  // Keep at least one word of every name.
  while (shared < shortest - 1 && split.every((words) => words[shared] === split[0]?.[shared])) shared += 1;
  return new Map(split.map((words) => [words.join('-'), words.slice(shared).join('-')]));
}

async function summarizeRun(uri: string, record: RunRecord): Promise<ReportRun> {
  const last = (key: string) =>
    record.metricKeys.includes(key) ? readLastValue(uri, record.runId, key) : Promise.resolve(undefined);
  const mqar: MqarPoint[] = [];
  const induction: InductionPoint[] = [];
  for (const key of record.metricKeys) {
    const mqarMatch = MQAR_METRIC.exec(key);
    if (mqarMatch) {
      const accuracy = await last(key);
      if (accuracy !== undefined) {
        mqar.push({ seqLen: Number(mqarMatch[1]), numKvPairs: Number(mqarMatch[2]), accuracy });
      }
    }
    const inductionMatch = INDUCTION_METRIC.exec(key);
    if (inductionMatch) {
      const accuracy = await last(key);
      const length = Number(inductionMatch[1]);
      const low = await last(`eval/induction/len_${length}/accuracy_ci_low`);
      const high = await last(`eval/induction/len_${length}/accuracy_ci_high`);
      const examples = await last(`eval/induction/len_${length}/examples`);
      if (accuracy !== undefined) {
        const interval = low !== undefined && high !== undefined && examples !== undefined;
        induction.push({ length, accuracy, ...(interval ? { interval: { low, high, examples } } : {}) });
      }
    }
  }
  const params = record.params;
  const evalAccuracy = await last('eval/accuracy');
  const seqLen = numericParam(params, 'task.seq_len');
  const numKvPairs = numericParam(params, 'task.num_kv_pairs');
  // A sweep over K trains one run per K and evaluates each on its own task only: that run's
  // final test accuracy is then its point of the accuracy-vs-K curve.
  const isMqarTask = params['task.name'] === undefined || params['task.name'] === 'mqar';
  if (
    mqar.length === 0 &&
    isMqarTask &&
    evalAccuracy !== undefined &&
    seqLen !== undefined &&
    numKvPairs !== undefined
  ) {
    mqar.push({ seqLen, numKvPairs, accuracy: evalAccuracy });
  }
  return {
    runId: record.runId,
    runName: record.runName,
    architecture: record.tags[ARCHITECTURE_TAG] || record.runName || record.runId,
    status: record.status,
    startTime: record.startTime,
    params,
    backend: record.tags[BACKEND_TAG],
    dModel: numericParam(params, 'model.d_model'),
    seqLen,
    parameters: numericParam(params, 'model.parameters'),
    steps: numericParam(params, 'train.steps'),
    stepsRun: record.metricKeys.includes('train/loss')
      ? await readLastStep(uri, record.runId, 'train/loss')
      : undefined,
    evalAccuracy,
    evalLoss: await last('eval/loss'),
    computeFlops: await last('compute/flops'),
    learningRate: numericParam(params, 'train.optimizer.lr'),
    stateBytes: numericParam(params, 'model.state_bytes_per_sequence'),
    stateGrows: params['model.state_grows_with_length'] === 'true',
    mqar: mqar.sort((a, b) => a.seqLen - b.seqLen || a.numKvPairs - b.numKvPairs),
    induction: induction.sort((a, b) => a.length - b.length),
  };
}

function numericParam(params: Record<string, string>, key: string): number | undefined {
  const text = params[key];
  if (text === undefined || text.trim() === '') return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}
