import { SeededRandom } from '@interleave/core';
import { describe, expect, it } from 'vitest';
import { percentileInterval } from '../src/scaling/bootstrap.js';
import { type ComputePoint, fitComputeLaw } from '../src/scaling/compute-law.js';

const TRUTH = { E: 1.7, A: 2000, alpha: 0.25 };

/** `count` runs log-spaced over 10¹⁵–10²⁰ FLOPs, with 1% multiplicative noise on the loss. */
function noisyPoints(count: number, seed: number): ComputePoint[] {
  const random = new SeededRandom(seed, 'compute-law-test');
  return Array.from({ length: count }, (_, i) => {
    const compute = 10 ** (15 + (5 * i) / (count - 1));
    const loss = (TRUTH.E + TRUTH.A * compute ** -TRUTH.alpha) * Math.exp(random.normal(0, 0.01));
    return { compute, loss };
  });
}

const width = (interval: { low: number; high: number }) => interval.high - interval.low;

describe('fitComputeLaw', () => {
  it('recovers L(C) = E + A·C^(−α) exactly from noise-free points', () => {
    const points = noisyPoints(8, 0).map(({ compute }) => ({
      compute,
      loss: TRUTH.E + TRUTH.A * compute ** -TRUTH.alpha,
    }));
    const fit = fitComputeLaw(points, { bootstrap: 0 });
    expect(fit.E).toBeCloseTo(TRUTH.E, 6);
    expect(fit.alpha).toBeCloseTo(TRUTH.alpha, 6);
    expect(fit.A / TRUTH.A).toBeCloseTo(1, 5);
    expect(fit.intervals.E).toEqual({ low: fit.E, high: fit.E });
  });

  it('recovers the parameters from noisy points, with intervals that contain the truth', () => {
    const fit = fitComputeLaw(noisyPoints(40, 1), { seed: 5 });
    expect(fit.points).toBe(40);
    expect(fit.confidence).toBe(0.95);
    expect(Math.abs(fit.E / TRUTH.E - 1)).toBeLessThan(0.05);
    expect(Math.abs(fit.alpha - TRUTH.alpha)).toBeLessThan(0.06);
    for (const key of ['E', 'A', 'alpha'] as const) {
      const interval = fit.intervals[key];
      expect(interval.low, key).toBeLessThan(TRUTH[key]);
      expect(interval.high, key).toBeGreaterThan(TRUTH[key]);
      expect(interval.low, key).toBeLessThan(fit[key]);
      expect(interval.high, key).toBeGreaterThan(fit[key]);
    }
  });

  it('narrows its intervals as points are added', () => {
    const few = fitComputeLaw(noisyPoints(10, 2), { seed: 3 });
    const many = fitComputeLaw(noisyPoints(80, 2), { seed: 3 });
    for (const key of ['E', 'alpha'] as const) {
      expect(width(many.intervals[key]), key).toBeLessThan(0.7 * width(few.intervals[key]));
    }
    expect(Math.log(many.intervals.A.high / many.intervals.A.low)).toBeLessThan(
      Math.log(few.intervals.A.high / few.intervals.A.low),
    );
  });

  it('is deterministic for a seed and resamples differently for another', () => {
    const points = noisyPoints(12, 4);
    const first = fitComputeLaw(points, { bootstrap: 50, seed: 9 });
    const again = fitComputeLaw(points, { bootstrap: 50, seed: 9 });
    const other = fitComputeLaw(points, { bootstrap: 50, seed: 10 });
    expect(again).toEqual(first);
    expect(other.E).toBe(first.E);
    expect(other.intervals.alpha).not.toEqual(first.intervals.alpha);
  });

  it('widens the intervals with the confidence level', () => {
    const points = noisyPoints(15, 6);
    const narrow = fitComputeLaw(points, { bootstrap: 100, confidence: 0.5 });
    const wide = fitComputeLaw(points, { bootstrap: 100, confidence: 0.99 });
    expect(width(wide.intervals.alpha)).toBeGreaterThan(width(narrow.intervals.alpha));
  });

  it('asks for enough points and valid options', () => {
    const points = noisyPoints(3, 0);
    expect(() => fitComputeLaw(points)).toThrow('needs at least 4 points (3 parameters), got 3');
    expect(() => fitComputeLaw([...points, { compute: -1, loss: 2 }])).toThrow('point 3: compute must be a positive');
    expect(() => fitComputeLaw(noisyPoints(5, 0), { confidence: 1 })).toThrow('confidence must lie strictly');
    expect(() => fitComputeLaw(noisyPoints(5, 0), { bootstrap: 2.5 })).toThrow('bootstrap must be a non-negative');
  });
});

describe('percentileInterval', () => {
  it('interpolates between order statistics and ignores runaway refits', () => {
    const values = [5, 1, 3, 2, 4, Number.NaN, Number.POSITIVE_INFINITY];
    expect(percentileInterval(values, 0.5)).toEqual({ low: 2, high: 4 });
    expect(percentileInterval(values, 0.9)).toEqual({ low: 1.2, high: 4.8 });
    expect(percentileInterval([Number.NaN], 0.9).low).toBeNaN();
  });
});
