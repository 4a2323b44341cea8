import { InterleaveError, SeededRandom } from '@interleave/core';

/** A confidence interval [low, high]. */
export interface Interval {
  low: number;
  high: number;
}

/**
 * `count` bootstrap resamples of `size` indices drawn with replacement, from a generator
 * seeded by `seed` alone, so a seed always gives the same resamples.
 */
export function* bootstrapResamples(size: number, count: number, seed: number): Generator<Uint32Array> {
  const random = new SeededRandom(seed, 'scaling-bootstrap');
  for (let sample = 0; sample < count; sample++) {
    const indices = new Uint32Array(size);
    for (let i = 0; i < size; i++) indices[i] = random.int(size);
    yield indices;
  }
}

/**
 * The percentile interval holding the central `confidence` share of `values` (non-finite values,
 * from resamples whose fit ran away, are left out), with linear interpolation between order
 * statistics. NaN bounds when no finite value is left.
 */
export function percentileInterval(values: readonly number[], confidence: number): Interval {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  const tail = (1 - confidence) / 2;
  return { low: quantile(sorted, tail), high: quantile(sorted, 1 - tail) };
}

function quantile(sorted: readonly number[], probability: number): number {
  if (sorted.length === 0) return Number.NaN;
  const position = probability * (sorted.length - 1);
  const below = Math.floor(position);
  const above = Math.min(below + 1, sorted.length - 1);
  const fraction = position - below;
  return (sorted[below] as number) * (1 - fraction) + (sorted[above] as number) * fraction;
}

/** Checks the options every bootstrapped fit shares; `name` is the function, for the message. */
export function checkBootstrapOptions(name: string, bootstrap: number, confidence: number): void {
  if (!Number.isInteger(bootstrap) || bootstrap < 0) {
    throw new InterleaveError(`${name}: bootstrap must be a non-negative integer, got ${bootstrap}`);
  }
  if (!(confidence > 0 && confidence < 1)) {
    throw new InterleaveError(`${name}: confidence must lie strictly between 0 and 1, got ${confidence}`);
  }
}
