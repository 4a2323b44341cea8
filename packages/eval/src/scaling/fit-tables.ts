import type { Interval } from './bootstrap.js';
import type { ChinchillaFit, ChinchillaParameter } from './chinchilla.js';
import type { ComputeLawFit } from './compute-law.js';

/** Four significant digits, switching to exponent notation for very large or small values. */
export function formatValue(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  const magnitude = Math.abs(value);
  if (magnitude !== 0 && (magnitude >= 1e5 || magnitude < 1e-3)) return value.toExponential(3);
  return String(Number(value.toPrecision(4)));
}

function formatInterval(interval: Interval | undefined): string {
  return interval === undefined ? '' : `[${formatValue(interval.low)}, ${formatValue(interval.high)}]`;
}

/** Left-aligned columns separated by two spaces. */
function alignColumns(rows: readonly string[][]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, column) => {
      widths[column] = Math.max(widths[column] ?? 0, cell.length);
    });
  }
  return rows
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column] as number))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function percent(confidence: number): string {
  return `${Number((confidence * 100).toPrecision(4))}%`;
}

/** The Chinchilla fit as a table of estimates and, when bootstrapped, their intervals. */
export function formatChinchillaTable(fit: ChinchillaFit, bootstrap: number): string {
  const keys: ChinchillaParameter[] = ['A', 'B', 'E', 'alpha', 'beta'];
  const header = ['parameter', 'estimate'];
  if (fit.intervals !== undefined) {
    header.push(`${percent(fit.confidence ?? 0.95)} interval (${bootstrap} bootstrap resamples)`);
  }
  const rows = [header, ...keys.map((key) => [key, formatValue(fit[key]), formatInterval(fit.intervals?.[key])])];
  const exponent = fit.computeOptimalExponent;
  return `${alignColumns(rows)}
compute-optimal allocation: N_opt ∝ C^${formatValue(exponent)}, D_opt ∝ C^${formatValue(1 - exponent)}
`;
}

/** One row per group: points, then each parameter's estimate and (with resamples) its interval. */
export function formatComputeLawTable(
  fits: readonly { name: string; fit: ComputeLawFit }[],
  groupLabel: string,
  bootstrap: number,
): string {
  const ci = `${percent(fits[0]?.fit.confidence ?? 0.95)} CI`;
  const keys = ['E', 'A', 'alpha'] as const;
  // Without resamples every interval is the estimate itself, which would only look like certainty.
  const withIntervals = bootstrap > 0;
  const rows = [[groupLabel, 'points', ...keys.flatMap((key) => (withIntervals ? [key, ci] : [key]))]];
  for (const { name, fit } of fits) {
    const cells = keys.flatMap((key) => {
      const estimate = formatValue(fit[key]);
      return withIntervals ? [estimate, formatInterval(fit.intervals[key])] : [estimate];
    });
    rows.push([name, String(fit.points), ...cells]);
  }
  return `${alignColumns(rows)}\n`;
}
