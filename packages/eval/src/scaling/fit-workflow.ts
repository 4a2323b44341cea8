import { InterleaveError } from '@interleave/core';
import { type ChinchillaFit, fitChinchilla } from './chinchilla.js';
import { COMPUTE_LAW_MIN_POINTS, type ComputeLawFit, fitComputeLaw } from './compute-law.js';
import { type ChinchillaColumns, type ComputeColumns, dropHighestLoss } from './csv-points.js';
import type { SkippedRun } from './experiment-points.js';
import {
  describeFitSource,
  type FitReadOptions,
  type FitSource,
  fitSourceFields,
  readChinchillaPoints,
  readComputePoints,
} from './fit-source.js';
import { formatChinchillaTable, formatComputeLawTable } from './fit-tables.js';

/** How a law is fitted: bootstrap resamples for the intervals, and points left out. */
export interface FitSettings {
  /** Resamples for the confidence intervals; 0: none. */
  readonly bootstrap: number;
  readonly seed: number;
  /** Interval coverage, in (0, 1). */
  readonly confidence: number;
  /** Leave out this many highest-loss points (of each group, for the compute law). */
  readonly dropHighest: number;
}

export interface ChinchillaFitReport {
  readonly source: FitSource;
  readonly settings: FitSettings;
  readonly fit: ChinchillaFit;
  /** Points read, and how many of them were fitted. */
  readonly points: number;
  readonly kept: number;
  readonly skipped: readonly SkippedRun[];
  /** Time spent fitting (reading excluded). */
  readonly seconds: number;
}

/** Reads the points, drops the highest-loss ones asked for, and fits L(N, D) by Chinchilla's approach 3. */
export async function fitChinchillaSource(
  source: FitSource,
  settings: FitSettings,
  read: FitReadOptions<ChinchillaColumns> = {},
): Promise<ChinchillaFitReport> {
  const { points, skipped } = await readChinchillaPoints(source, read);
  const kept = dropHighestLoss(points, settings.dropHighest);
  const started = performance.now();
  const fit = fitChinchilla(kept, {
    bootstrap: settings.bootstrap,
    seed: settings.seed,
    confidence: settings.confidence,
  });
  const seconds = (performance.now() - started) / 1000;
  return { source, settings, fit, points: points.length, kept: kept.length, skipped, seconds };
}

/** The report as one JSON-ready object (what `interleave fit --json` prints). */
export function chinchillaFitJson(report: ChinchillaFitReport): Record<string, unknown> {
  const { source, settings, fit } = report;
  return {
    law: 'chinchilla',
    ...fitSourceFields(source),
    ...fit,
    dataOptimalExponent: 1 - fit.computeOptimalExponent,
    dropped: report.points - report.kept,
    bootstrap: settings.bootstrap,
    seed: settings.seed,
    ...(source.kind === 'experiment' ? { skipped: report.skipped } : {}),
    seconds: report.seconds,
  };
}

/** The report as text: the law, the points, the objective and the parameter table. */
export function formatChinchillaFitReport(report: ChinchillaFitReport): string {
  const dropped = report.points - report.kept;
  return (
    `Chinchilla approach 3: L(N, D) = E + A/N^alpha + B/D^beta, ${describeFitSource(report.source)}\n` +
    `${report.kept} points${dropped > 0 ? ` (${dropped} highest-loss dropped)` : ''}, ` +
    `Huber objective ${report.fit.objective.toPrecision(6)}, fitted in ${report.seconds.toFixed(1)} s\n\n` +
    formatChinchillaTable(report.fit, report.settings.bootstrap)
  );
}

export interface ComputeLawReport {
  readonly source: FitSource;
  readonly settings: FitSettings;
  /** What the groups are: `architecture` for an experiment, the group column's name for a CSV. */
  readonly groupLabel: string;
  readonly fits: readonly { name: string; fit: ComputeLawFit }[];
  /** Groups left unfitted for having fewer than COMPUTE_LAW_MIN_POINTS points. */
  readonly tooFewPoints: readonly { name: string; points: number }[];
  readonly skipped: readonly SkippedRun[];
  /** Time spent fitting (reading excluded). */
  readonly seconds: number;
}

/**
 * Reads the points, drops each group's highest-loss points asked for, and fits L(C) to every
 * group with enough points (`onTooFewPoints` hears of the others). Throws when no group has enough.
 */
export async function fitComputeLawSource(
  source: FitSource,
  settings: FitSettings,
  read: FitReadOptions<ComputeColumns> & { readonly onTooFewPoints?: (group: string, points: number) => void } = {},
): Promise<ComputeLawReport> {
  const { groups, skipped } = await readComputePoints(source, read);
  const eligible = [...groups].map(([name, points]) => ({
    name,
    points: dropHighestLoss(points, settings.dropHighest),
  }));
  const tooSmall = eligible.filter((group) => group.points.length < COMPUTE_LAW_MIN_POINTS);
  if (tooSmall.length === eligible.length) {
    const counts = eligible.map((group) => `${group.name}: ${group.points.length}`).join(', ');
    throw new InterleaveError(
      `too few points: a compute-law fit needs at least ${COMPUTE_LAW_MIN_POINTS} per group, ${describeFitSource(source)} has ${counts === '' ? 'none' : counts}`,
    );
  }
  for (const group of tooSmall) read.onTooFewPoints?.(group.name, group.points.length);
  const started = performance.now();
  const options = { bootstrap: settings.bootstrap, seed: settings.seed, confidence: settings.confidence };
  const fits = eligible
    .filter((group) => group.points.length >= COMPUTE_LAW_MIN_POINTS)
    .map((group) => ({ name: group.name, fit: fitComputeLaw(group.points, options) }));
  const seconds = (performance.now() - started) / 1000;
  return {
    source,
    settings,
    groupLabel: source.kind === 'experiment' ? 'architecture' : (read.columns?.group ?? 'group'),
    fits,
    tooFewPoints: tooSmall.map((group) => ({ name: group.name, points: group.points.length })),
    skipped,
    seconds,
  };
}

/** The report as one JSON-ready object (what `interleave fit --law compute --json` prints). */
export function computeLawJson(report: ComputeLawReport): Record<string, unknown> {
  const { source, settings } = report;
  return {
    law: 'compute',
    ...fitSourceFields(source),
    fits: report.fits.map(({ name, fit }) => ({ group: name, ...fit })),
    tooFewPoints: report.tooFewPoints.map((group) => ({ group: group.name, points: group.points })),
    bootstrap: settings.bootstrap,
    seed: settings.seed,
    ...(source.kind === 'experiment' ? { skipped: report.skipped } : {}),
    seconds: report.seconds,
  };
}

/** The report as text: the law, how intervals were made, and one table row per group. */
export function formatComputeLawReport(report: ComputeLawReport): string {
  const { bootstrap } = report.settings;
  return (
    `Compute law L(C) = E + A·C^(-alpha), ${describeFitSource(report.source)}\n` +
    `${bootstrap > 0 ? `intervals: bootstrap percentiles from ${bootstrap} resamples; ` : ''}fitted in ${report.seconds.toFixed(1)} s\n\n` +
    formatComputeLawTable(report.fits, report.groupLabel, bootstrap)
  );
}
