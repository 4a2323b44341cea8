import { describe, expect, it } from 'vitest';
import { wilsonInterval } from '../src/index.js';

describe('wilsonInterval (95%)', () => {
  it('matches the closed form at known points', () => {
    const close = (actual: { low: number; high: number }, low: number, high: number) => {
      expect(actual.low).toBeCloseTo(low, 6);
      expect(actual.high).toBeCloseTo(high, 6);
    };
    close(wilsonInterval(5, 10), 0.236593, 0.763407);
    close(wilsonInterval(900, 1000), 0.879848, 0.917091);
  });

  it('stays inside [0, 1] at the extremes, where the normal approximation collapses to a point', () => {
    expect(wilsonInterval(0, 10)).toEqual({ low: 0, high: expect.closeTo(0.277533, 6) });
    const perfect = wilsonInterval(1000, 1000);
    expect(perfect.high).toBe(1);
    expect(perfect.low).toBeCloseTo(0.996173, 6);
  });

  it('narrows with the examples: 64 give about ±6 points at 0.97, 1000 under ±1.5', () => {
    const small = wilsonInterval(62, 64);
    const large = wilsonInterval(970, 1000);
    expect(small.high - small.low).toBeGreaterThan(0.08);
    expect(large.high - large.low).toBeLessThan(0.025);
  });

  it('rejects impossible counts', () => {
    expect(() => wilsonInterval(3, 2)).toThrow(RangeError);
    expect(() => wilsonInterval(0, 0)).toThrow(RangeError);
  });
});
