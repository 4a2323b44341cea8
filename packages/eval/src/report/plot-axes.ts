import type { TopLevelSpec } from 'vega-lite';

/** Axis pieces that several report plots share. */

/** A 0–1 accuracy axis; the full range keeps "near chance" and "solved" comparable across plots. */
export function accuracyAxis(title: string) {
  return {
    field: 'accuracy',
    type: 'quantitative' as const,
    scale: { domain: [0, 1] },
    axis: { title, format: '.1f' },
  };
}

/**
 * Labels for axes of powers of two: 1024 reads as 1k and 2^20 as 1M (binary prefixes, exact
 * for the lengths and pair counts these tasks use), so long lengths stay short on the axis.
 */
export const powerOfTwoLabels = {
  labelExpr:
    "datum.value >= 1048576 ? format(datum.value / 1048576, '~g') + 'M' : datum.value >= 1024 ? format(datum.value / 1024, '~g') + 'k' : format(datum.value, '~g')",
  labelOverlap: true,
};

/**
 * Width of one facet column: one plot is 560 wide, several share about 800 pixels, so that
 * with the y axis the figure fits the report's 1000-pixel column without being scaled down.
 */
export function facetCellWidth(columns: number): number {
  return columns <= 1 ? 560 : Math.max(150, Math.floor(800 / columns) - 20);
}

/** Ticks at the powers of ten that a log axis spans, labelled 1e12, 1e13, …: gridlines only per decade. */
export function decadeAxis(values: readonly number[]) {
  const low = Math.floor(Math.log10(Math.min(...values)));
  const high = Math.ceil(Math.log10(Math.max(...values)));
  const decades: number[] = [];
  for (let exponent = low; exponent <= high; exponent++) decades.push(10 ** exponent);
  return { values: decades, labelExpr: "'1e' + round(log(datum.value) / LN10)" };
}

/**
 * An explicit domain for a log axis whose values span less than `minimumRatio` (max/min), else
 * undefined (the data's own extent serves). Vega labels a zero-width domain with its one raw
 * value (`0.242701167583`) and a hair-wide one with as many decimals, so such a span is widened
 * geometrically about its middle until its ticks fall on short, rounded numbers.
 */
export function widenedLogDomain(values: readonly number[], minimumRatio = 1.2): [number, number] | undefined {
  const low = Math.min(...values);
  const high = Math.max(...values);
  if (!(low > 0) || !Number.isFinite(high) || high / low >= minimumRatio) return undefined;
  const middle = Math.sqrt(low * high);
  const halfSpan = Math.sqrt(minimumRatio);
  return [middle / halfSpan, middle * halfSpan];
}

/** One layer of a layered Vega-Lite chart (vega-lite exports only the top-level spec type). */
export type PlotLayer = Extract<TopLevelSpec, { layer: unknown }>['layer'][number];
