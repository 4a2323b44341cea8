import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openTracker, type RunStatus } from '@interleave/core';

/** A run to write into a temporary MLflow store; metric values are synthetic. */
export interface SyntheticRun {
  name: string;
  architecture?: string;
  status?: Exclude<RunStatus, 'RUNNING' | 'SCHEDULED'> | 'RUNNING';
  params?: Record<string, string | number>;
  tags?: Record<string, string>;
  /** Metric key → values logged at steps 1, 2, … (the last one is the final value). */
  metrics?: Record<string, number[]>;
}

export interface WrittenRun extends SyntheticRun {
  runId: string;
}

export function temporaryStore(): string {
  return join(mkdtempSync(join(tmpdir(), 'interleave-report-')), 'mlruns');
}

export async function writeRuns(uri: string, experiment: string, runs: readonly SyntheticRun[]): Promise<WrittenRun[]> {
  const written: WrittenRun[] = [];
  for (const run of runs) {
    const tracker = await openTracker({ uri, experiment, runName: run.name });
    const tags = { ...run.tags };
    if (run.architecture !== undefined) tags['interleave.architecture'] = run.architecture;
    if (Object.keys(tags).length > 0) await tracker.setTags(tags);
    if (run.params) await tracker.logParams(run.params);
    for (const [key, values] of Object.entries(run.metrics ?? {})) {
      for (const [index, value] of values.entries()) await tracker.logMetrics({ [key]: value }, index + 1);
    }
    if (run.status !== 'RUNNING') await tracker.end(run.status ?? 'FINISHED');
    written.push({ ...run, runId: tracker.runId });
  }
  return written;
}

/** The loss a synthetic run reaches with compute `flops`: a known compute law per architecture. */
export const TRUE_LAWS: Record<string, { E: number; A: number; alpha: number }> = {
  'mamba+swa': { E: 1.6, A: 900, alpha: 0.18 },
  'attention+attention': { E: 1.8, A: 600, alpha: 0.16 },
  'hyena+hyena': { E: 1.9, A: 500, alpha: 0.15 },
};

const K_VALUES = [4, 8, 16, 32, 64];
const INDUCTION_LENGTHS = [64, 128, 256, 512, 1024, 2048, 4096];

function mqarMetrics(architecture: string, seqLen: number, dModel: number): Record<string, number[]> {
  const strength =
    (architecture === 'attention+attention' ? 1 : architecture === 'mamba+swa' ? 0.9 : 0.7) * (dModel / 128);
  const metrics: Record<string, number[]> = {};
  for (const k of K_VALUES) {
    metrics[`eval/mqar/L${seqLen}_K${k}/accuracy`] = [Math.max(0.02, Math.min(1, 1.05 - (k / 64) * (1.2 - strength)))];
  }
  return metrics;
}

function inductionMetrics(architecture: string): Record<string, number[]> {
  const metrics: Record<string, number[]> = {};
  for (const length of INDUCTION_LENGTHS) {
    const accuracy = architecture === 'mamba+swa' ? 0.99 : length <= 512 ? 0.98 : 0.06;
    metrics[`eval/induction/len_${length}/accuracy`] = [accuracy];
    if (architecture === 'mamba+swa') {
      // Error bars as the evaluation logs them (95% Wilson interval of 990 of 1000).
      metrics[`eval/induction/len_${length}/accuracy_ci_low`] = [0.9817];
      metrics[`eval/induction/len_${length}/accuracy_ci_high`] = [0.9946];
      metrics[`eval/induction/len_${length}/examples`] = [1000];
    }
  }
  return metrics;
}

/**
 * An experiment with three architectures: compute sweeps (four runs each for two of them,
 * two for hyena, too few for a fit), an MQAR grid at two model widths, induction-head lengths
 * for two architectures, and one failed run.
 */
export function mixedExperimentRuns(): SyntheticRun[] {
  const runs: SyntheticRun[] = [];
  const sizes = [
    { dModel: 32, parameters: 40_000, flops: 2e12 },
    { dModel: 64, parameters: 120_000, flops: 2e13 },
    { dModel: 128, parameters: 450_000, flops: 3e14 },
    { dModel: 256, parameters: 1_700_000, flops: 5e15 },
  ];
  for (const architecture of Object.keys(TRUE_LAWS)) {
    const law = TRUE_LAWS[architecture]!;
    const own = architecture === 'hyena+hyena' ? sizes.slice(1, 3) : sizes;
    for (const [index, size] of own.entries()) {
      // Small deterministic wiggles so the fit has residuals but stays near the true law.
      const wiggle = 1 + 0.004 * (index % 2 === 0 ? 1 : -1);
      const loss = (law.E + law.A * size.flops ** -law.alpha) * wiggle;
      const metrics: Record<string, number[]> = {
        'compute/flops': [size.flops / 4, size.flops / 2, size.flops],
        'eval/loss': [loss + 1, loss + 0.3, loss],
        'eval/accuracy': [0.1, 0.5, 0.75 + 0.05 * index],
      };
      if (size.dModel === 64 || size.dModel === 128)
        Object.assign(metrics, mqarMetrics(architecture, 256, size.dModel));
      if (size.dModel === 128 && architecture !== 'hyena+hyena') Object.assign(metrics, inductionMetrics(architecture));
      runs.push({
        name: `${architecture.replace('+', '-')}-d${size.dModel}`,
        architecture,
        params: {
          'model.parameters': size.parameters,
          'model.d_model': size.dModel,
          'task.name': 'mqar',
          'task.seq_len': 256,
          'task.num_kv_pairs': 16,
          'train.steps': 3000,
        },
        tags: { 'interleave.backend': 'wasm' },
        metrics,
      });
    }
  }
  runs.push({
    name: 'attention-crashed',
    architecture: 'attention+attention',
    status: 'FAILED',
    params: { 'model.d_model': 64, 'task.seq_len': 256, 'train.steps': 3000 },
    metrics: { 'compute/flops': [1e12], 'eval/loss': [9] },
  });
  return runs;
}

/** The points a report should fit for `architecture`: final compute and final loss of its finished runs. */
export function computePointsOf(runs: readonly SyntheticRun[], architecture: string) {
  return runs
    .filter((run) => run.architecture === architecture && (run.status ?? 'FINISHED') === 'FINISHED')
    .filter((run) => run.metrics?.['compute/flops'] && run.metrics['eval/loss'])
    .map((run) => ({ compute: run.metrics!['compute/flops']!.at(-1)!, loss: run.metrics!['eval/loss']!.at(-1)! }));
}
