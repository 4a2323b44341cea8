import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { type ChinchillaFit, chinchillaStartGrid, fitChinchilla } from '../src/scaling/chinchilla.js';
import { type ChinchillaData, chinchillaObjective } from '../src/scaling/chinchilla-objective.js';
import { dropHighestLoss, readChinchillaCsv } from '../src/scaling/csv-points.js';

// Epoch AI's points (source in fixtures/README.md).
const DATA = fileURLToPath(new URL('./fixtures/chinchilla-svg-extracted.csv', import.meta.url));

describe("Chinchilla approach 3 on Epoch AI's extracted points (docs/design.md#chinchilla-approach-3)", () => {
  let fit: ChinchillaFit;
  let data: ChinchillaData;

  beforeAll(async () => {
    const points = await readChinchillaCsv(DATA, { n: 'Model Size', flops: 'Training FLOP', loss: 'loss' });
    expect(points).toHaveLength(245);
    const kept = dropHighestLoss(points, 5);
    data = {
      logN: Float64Array.from(kept, (point) => Math.log(point.n)),
      logD: Float64Array.from(kept, (point) => Math.log(point.d)),
      logLoss: Float64Array.from(kept, (point) => Math.log(point.loss)),
    };
    const started = performance.now();
    fit = fitChinchilla(kept, { bootstrap: 40, seed: 1 });
    const seconds = (performance.now() - started) / 1000;
    console.log(`Chinchilla fit (4500 starts + 40 bootstrap refits) took ${seconds.toFixed(2)} s:`, {
      A: fit.A,
      B: fit.B,
      E: fit.E,
      alpha: fit.alpha,
      beta: fit.beta,
    });
  });

  it("matches Epoch AI's published fit", () => {
    expect(fit.points).toBe(240);
    expect(Math.abs(fit.A / 482.01 - 1)).toBeLessThan(0.05);
    expect(Math.abs(fit.B / 2085.43 - 1)).toBeLessThan(0.05);
    expect(Math.abs(fit.E / 1.8172 - 1)).toBeLessThan(0.01);
    expect(Math.abs(fit.alpha - 0.3478)).toBeLessThan(0.005);
    expect(Math.abs(fit.beta - 0.3658)).toBeLessThan(0.005);
    expect(fit.computeOptimalExponent).toBeCloseTo(fit.beta / (fit.alpha + fit.beta), 12);
  });

  it('is a minimum at least as good as the published parameters under the same objective', () => {
    const objective = chinchillaObjective(data);
    const gradient = new Float64Array(5);
    const at = (A: number, B: number, E: number, alpha: number, beta: number) =>
      objective(Float64Array.of(Math.log(A), Math.log(B), Math.log(E), alpha, beta), gradient);
    const published = at(482.01, 2085.43, 1.8172, 0.3478, 0.3658);
    const ours = at(fit.A, fit.B, fit.E, fit.alpha, fit.beta);
    expect(ours).toBeCloseTo(fit.objective, 12);
    expect(ours).toBeLessThanOrEqual(published);
    for (const component of gradient) expect(Math.abs(component)).toBeLessThan(1e-6);
  });

  it('brackets every estimate with a bootstrap interval', () => {
    expect(fit.confidence).toBe(0.95);
    for (const key of ['A', 'B', 'E', 'alpha', 'beta'] as const) {
      const interval = fit.intervals?.[key];
      expect(interval, key).toBeDefined();
      expect(interval?.low, key).toBeLessThan(fit[key]);
      expect(interval?.high, key).toBeGreaterThan(fit[key]);
    }
  });
});

describe('Chinchilla objective and grid', () => {
  it('has the 4500 starts of docs/design.md#chinchilla-approach-3', () => {
    const grid = chinchillaStartGrid();
    expect(grid).toHaveLength(4500);
    expect(grid[0]).toEqual(Float64Array.of(0, 0, -1, 0, 0));
    expect(grid.at(-1)).toEqual(Float64Array.of(25, 25, 1, 2, 2));
  });

  it('has an analytic gradient that matches finite differences, in both Huber regimes', () => {
    const data = {
      logN: Float64Array.of(17, 19.5, 22, 23),
      logD: Float64Array.of(21, 23, 24.5, 26),
      logLoss: Float64Array.of(Math.log(3.2), Math.log(2.6), Math.log(2.2), Math.log(2.0)),
    };
    // A small δ puts most residuals in the linear regime, a large one all in the quadratic.
    for (const delta of [1e-3, 10]) {
      const objective = chinchillaObjective(data, delta);
      const x = Float64Array.of(6.2, 7.6, 0.6, 0.34, 0.37);
      const gradient = new Float64Array(5);
      objective(x, gradient);
      for (let k = 0; k < 5; k++) {
        const h = 1e-6;
        const up = Float64Array.from(x);
        const down = Float64Array.from(x);
        up[k] = (up[k] as number) + h;
        down[k] = (down[k] as number) - h;
        const scratch = new Float64Array(5);
        const numeric = (objective(up, scratch) - objective(down, scratch)) / (2 * h);
        expect(gradient[k]).toBeCloseTo(numeric, 6);
      }
    }
  });

  it('stays finite for extreme parameters (log-sum-exp, not exp then log)', () => {
    const data = { logN: Float64Array.of(20), logD: Float64Array.of(25), logLoss: Float64Array.of(1) };
    const gradient = new Float64Array(5);
    const value = chinchillaObjective(data)(Float64Array.of(900, -900, 800, 0, 0), gradient);
    expect(Number.isFinite(value)).toBe(true);
    expect([...gradient].every(Number.isFinite)).toBe(true);
    // The LSE is 900, so the residual is 899: all of it in Huber's linear part.
    expect(value).toBeCloseTo(1e-3 * (899 - 0.5e-3), 9);
  });

  it('recovers the parameters of noise-free data', () => {
    const truth = { A: 400, B: 1500, E: 1.7, alpha: 0.32, beta: 0.29 };
    const points = [];
    for (const n of [1e7, 5e7, 2e8, 1e9]) {
      for (const d of [1e9, 5e9, 3e10]) {
        points.push({ n, d, loss: truth.E + truth.A / n ** truth.alpha + truth.B / d ** truth.beta });
      }
    }
    const fit = fitChinchilla(points);
    expect(fit.intervals).toBeUndefined();
    expect(fit.E).toBeCloseTo(truth.E, 4);
    expect(fit.alpha).toBeCloseTo(truth.alpha, 4);
    expect(fit.beta).toBeCloseTo(truth.beta, 4);
    expect(fit.A / truth.A).toBeCloseTo(1, 3);
    expect(fit.B / truth.B).toBeCloseTo(1, 3);
  });

  it('asks for enough points and positive values', () => {
    const point = { n: 1e8, d: 1e9, loss: 3 };
    expect(() => fitChinchilla([point, point, point])).toThrow('needs at least 6 points (5 parameters), got 3');
    expect(() => fitChinchilla([...Array(5).fill(point), { ...point, d: 0 }])).toThrow('point 5: d must be a positive');
  });
});
