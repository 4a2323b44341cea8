/** How a report writes numbers in its tables; a missing value is a dash, not a blank cell. */

export const MISSING = '–';

/** Four significant digits, switching to exponent notation for very large or small values. */
export function formatSignificant(value: number | undefined): string {
  if (value === undefined) return MISSING;
  return Number.isFinite(value) ? value.toPrecision(4) : String(value);
}

/** A value with its confidence interval: `1.234 [1.100, 1.400]`. */
export function formatWithInterval(value: number, interval: { low: number; high: number }): string {
  return `${formatSignificant(value)} [${formatSignificant(interval.low)}, ${formatSignificant(interval.high)}]`;
}

/** Accuracies as fractions with three decimals (0.987): the plots use the same 0–1 scale. */
export function formatAccuracy(value: number | undefined): string {
  if (value === undefined) return MISSING;
  return Number.isFinite(value) ? value.toFixed(3) : String(value);
}

/** Losses in nats with four decimals. */
export function formatLoss(value: number | undefined): string {
  if (value === undefined) return MISSING;
  return Number.isFinite(value) ? value.toFixed(4) : String(value);
}

/** FLOPs span many decades: always exponent notation, three significant digits (1.23e+15). */
export function formatFlops(value: number | undefined): string {
  if (value === undefined) return MISSING;
  return Number.isFinite(value) ? value.toExponential(2) : String(value);
}

/** Counts with thousands separators (1,234,567). */
export function formatCount(value: number | undefined): string {
  if (value === undefined) return MISSING;
  return Number.isFinite(value) ? value.toLocaleString('en-US') : String(value);
}

/** The first 8 hex digits of a run id, as MLflow's UI abbreviates them. */
export function shortRunId(runId: string): string {
  return runId.slice(0, 8);
}
