import { describe, expect, it } from 'vitest';
import { type DifferentiableFunction, minimizeLbfgs } from '../src/scaling/lbfgs.js';
import { lineSearchScratch, strongWolfeSearch } from '../src/scaling/line-search.js';

/** The extended Rosenbrock function Σ 100(x₂ᵢ − x₂ᵢ₋₁²)² + (1 − x₂ᵢ₋₁)², minimum 0 at all ones. */
const rosenbrock: DifferentiableFunction = (x, gradient) => {
  gradient.fill(0);
  let value = 0;
  for (let i = 0; i < x.length; i += 2) {
    const u = x[i] as number;
    const v = x[i + 1] as number;
    const valley = v - u * u;
    value += 100 * valley * valley + (1 - u) * (1 - u);
    gradient[i] = -400 * u * valley - 2 * (1 - u);
    gradient[i + 1] = 200 * valley;
  }
  return value;
};

describe('minimizeLbfgs', () => {
  it('finds the minimum of the 2-D Rosenbrock function from the classic start', () => {
    const result = minimizeLbfgs(rosenbrock, [-1.2, 1]);
    expect(result.value).toBeLessThan(1e-14);
    expect(result.x[0]).toBeCloseTo(1, 6);
    expect(result.x[1]).toBeCloseTo(1, 6);
    expect(['gradient', 'value']).toContain(result.stop);
    // Quasi-Newton speed, not steepest descent's thousands of iterations.
    expect(result.iterations).toBeLessThan(100);
  });

  it('finds the minimum of a 20-dimensional Rosenbrock function', () => {
    const start = Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? -1.2 : 1));
    const result = minimizeLbfgs(rosenbrock, start, { maxIterations: 2000 });
    expect(result.value).toBeLessThan(1e-12);
    for (const coordinate of result.x) expect(coordinate).toBeCloseTo(1, 5);
  });

  it('backs off from steps that land where the objective is not finite', () => {
    // f(x) = x − log x, minimum at 1; the first steepest-descent step from 0.01 overshoots past 0.
    const barrier: DifferentiableFunction = (x, gradient) => {
      const value = x[0] as number;
      gradient[0] = 1 - 1 / value;
      return value > 0 ? value - Math.log(value) : Number.NaN;
    };
    const result = minimizeLbfgs(barrier, [0.01]);
    expect(result.x[0]).toBeCloseTo(1, 8);
  });

  it('reports a start where the objective is not finite instead of wandering', () => {
    const result = minimizeLbfgs(() => Number.POSITIVE_INFINITY, [0, 0]);
    expect(result.stop).toBe('non-finite-start');
    expect(result.iterations).toBe(0);
  });
});

describe('strongWolfeSearch', () => {
  it('returns a step with sufficient decrease and a flattened slope', () => {
    const x = Float64Array.of(-1.2, 1);
    const gradient = new Float64Array(2);
    const value = rosenbrock(x, gradient);
    const direction = Float64Array.from(gradient, (g) => -g);
    const [d0, d1] = direction as unknown as [number, number];
    const slope0 = -(d0 * d0 + d1 * d1);
    const state = { x, gradient, value, direction, scratch: lineSearchScratch(2) };
    const { step } = strongWolfeSearch(rosenbrock, state, 1);
    expect(step).toBeGreaterThan(0);
    expect(state.value).toBeLessThanOrEqual(value + 1e-4 * step * slope0);
    const slope = (state.gradient[0] as number) * d0 + (state.gradient[1] as number) * d1;
    expect(Math.abs(slope)).toBeLessThanOrEqual(0.9 * Math.abs(slope0));
    expect(state.x[0]).toBeCloseTo(-1.2 + step * d0, 12);
  });
});
