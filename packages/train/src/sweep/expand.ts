import { SeededRandom } from '@interleave/core';
import type { SweepConfig, SweepDistribution } from './sweep-schema.js';

/** One point of a sweep: a value for each parameter, in the order the sweep lists them. */
export interface SweepPoint {
  /** 1-based, in expansion order. */
  readonly index: number;
  /** Dotted key path → value. */
  readonly values: Readonly<Record<string, unknown>>;
  /** For each parameter, the position of its value in the sweep's list (for error locations); absent for draws. */
  readonly listPositions: Readonly<Record<string, number>>;
}

/** Values drawn from a continuous range are rounded to this many significant digits, so they read well in tables. */
const DRAWN_DIGITS = 6;

/**
 * The points a sweep asks for. `grid`: every combination, the first parameter varying slowest
 * (nested loops in the order written); `zip`: the i-th value of every list together; `random`:
 * `trials` draws from a generator seeded by `sweep.seed`, lists drawn as uniform choices.
 */
export function expandSweep(sweep: SweepConfig): SweepPoint[] {
  const entries = Object.entries(sweep.parameters);
  switch (sweep.method) {
    case 'grid':
      return gridPoints(entries.map(([key, values]) => [key, asList(key, values)]));
    case 'zip':
      return zipPoints(entries.map(([key, values]) => [key, asList(key, values)]));
    case 'random':
      return randomPoints(entries, sweep.trials ?? 1, sweep.seed);
  }
}

function asList(key: string, values: unknown[] | SweepDistribution): unknown[] {
  // The schema allows distributions only for `random`; this guards callers that skip it.
  if (!Array.isArray(values)) throw new Error(`sweep parameter '${key}' is a distribution outside method 'random'`);
  return values;
}

function gridPoints(lists: ReadonlyArray<readonly [string, unknown[]]>): SweepPoint[] {
  const total = lists.reduce((product, [, values]) => product * values.length, 1);
  const points: SweepPoint[] = [];
  for (let flat = 0; flat < total; flat++) {
    const values: Record<string, unknown> = {};
    const listPositions: Record<string, number> = {};
    // Mixed-radix digits of `flat`, the last parameter being the fastest digit.
    let rest = flat;
    for (let i = lists.length - 1; i >= 0; i--) {
      const [key, list] = lists[i] as readonly [string, unknown[]];
      const position = rest % list.length;
      rest = Math.floor(rest / list.length);
      listPositions[key] = position;
    }
    for (const [key, list] of lists) values[key] = list[listPositions[key] as number];
    points.push({ index: flat + 1, values, listPositions: orderLike(lists, listPositions) });
  }
  return points;
}

function zipPoints(lists: ReadonlyArray<readonly [string, unknown[]]>): SweepPoint[] {
  const length = lists[0]?.[1].length ?? 0;
  return Array.from({ length }, (_, position) => ({
    index: position + 1,
    values: Object.fromEntries(lists.map(([key, list]) => [key, list[position]])),
    listPositions: Object.fromEntries(lists.map(([key]) => [key, position])),
  }));
}

function randomPoints(
  entries: ReadonlyArray<readonly [string, unknown[] | SweepDistribution]>,
  trials: number,
  seed: number,
): SweepPoint[] {
  // One stream per parameter: adding a parameter to a sweep leaves the others' draws unchanged.
  const streams = entries.map(([key]) => new SeededRandom(seed, `sweep:${key}`));
  const points: SweepPoint[] = [];
  for (let trial = 0; trial < trials; trial++) {
    const values: Record<string, unknown> = {};
    const listPositions: Record<string, number> = {};
    entries.forEach(([key, spec], parameter) => {
      const rng = streams[parameter] as SeededRandom;
      if (Array.isArray(spec)) {
        const position = rng.int(spec.length);
        values[key] = spec[position];
        listPositions[key] = position;
      } else {
        values[key] = draw(spec, rng);
      }
    });
    points.push({ index: trial + 1, values, listPositions });
  }
  return points;
}

function draw(distribution: SweepDistribution, rng: SeededRandom): unknown {
  if ('uniform' in distribution) {
    const [low, high] = distribution.uniform;
    return rounded(rng.uniform(low, high));
  }
  if ('log_uniform' in distribution) {
    const [low, high] = distribution.log_uniform;
    return rounded(Math.exp(rng.uniform(Math.log(low), Math.log(high))));
  }
  return distribution.choice[rng.int(distribution.choice.length)];
}

function rounded(value: number): number {
  return Number(value.toPrecision(DRAWN_DIGITS));
}

function orderLike(
  lists: ReadonlyArray<readonly [string, unknown[]]>,
  positions: Record<string, number>,
): Record<string, number> {
  return Object.fromEntries(lists.map(([key]) => [key, positions[key] as number]));
}
