import { InterleaveError } from '@interleave/core';
import type { ChinchillaPoint } from './chinchilla.js';
import type { ComputePoint } from './compute-law.js';
import { type ChinchillaColumns, type ComputeColumns, readChinchillaCsv, readComputeCsv } from './csv-points.js';
import { readExperimentChinchillaPoints, readExperimentComputePoints, type SkippedRun } from './experiment-points.js';

/** Where a fit's points come from: a CSV file, or the FINISHED runs of an MLflow experiment. */
export type FitSource =
  | { readonly kind: 'csv'; readonly file: string }
  | { readonly kind: 'experiment'; readonly experiment: string; readonly uri: string };

/** How to read points: CSV columns for a file, the loss metric for an experiment. */
export interface FitReadOptions<Columns> {
  readonly columns?: Columns;
  /** The metric whose last value is a run's loss (default `eval/loss`). */
  readonly lossMetric?: string;
  /** Told about each experiment run that gave no point (unfinished, a metric never logged, …). */
  readonly onSkipped?: (run: SkippedRun) => void;
}

/** The source as messages name it: the file, or `experiment 'name' (uri)`. */
export function describeFitSource(source: FitSource): string {
  return source.kind === 'csv' ? source.file : `experiment '${source.experiment}' (${source.uri})`;
}

/** The source as a fit's JSON output records it. */
export function fitSourceFields(source: FitSource): Record<string, string> {
  return source.kind === 'csv' ? { csv: source.file } : { experiment: source.experiment, uri: source.uri };
}

export async function readChinchillaPoints(
  source: FitSource,
  options: FitReadOptions<ChinchillaColumns>,
): Promise<{ points: ChinchillaPoint[]; skipped: SkippedRun[] }> {
  if (source.kind === 'csv') {
    if (options.columns === undefined) {
      throw new InterleaveError(`${source.file}: a Chinchilla fit needs the CSV's N column, and its D or FLOPs column`);
    }
    return { points: await readChinchillaCsv(source.file, options.columns), skipped: [] };
  }
  const read = await readExperimentChinchillaPoints(source.uri, source.experiment, { lossMetric: options.lossMetric });
  for (const run of read.skipped) options.onSkipped?.(run);
  return read;
}

export async function readComputePoints(
  source: FitSource,
  options: FitReadOptions<ComputeColumns>,
): Promise<{ groups: Map<string, ComputePoint[]>; skipped: SkippedRun[] }> {
  if (source.kind === 'csv') {
    const columns = options.columns ?? { compute: 'compute', loss: 'loss' };
    return { groups: await readComputeCsv(source.file, columns), skipped: [] };
  }
  const read = await readExperimentComputePoints(source.uri, source.experiment, { lossMetric: options.lossMetric });
  for (const run of read.skipped) options.onSkipped?.(run);
  return read;
}
