import { InterleaveError } from '@interleave/core';
import { bootstrapResamples, checkBootstrapOptions, type Interval, percentileInterval } from './bootstrap.js';
import { type ChinchillaData, chinchillaObjective } from './chinchilla-objective.js';
import { type LbfgsOptions, type LbfgsResult, minimizeLbfgs } from './lbfgs.js';

/** One training run: parameters N, training tokens D and its final loss. */
export interface ChinchillaPoint {
  n: number;
  d: number;
  loss: number;
}

export type ChinchillaParameter = 'A' | 'B' | 'E' | 'alpha' | 'beta';

/** L(N, D) = E + A/N^α + B/D^β, fitted by Chinchilla's approach 3 (docs/design.md#chinchilla-approach-3). */
export interface ChinchillaFit {
  A: number;
  B: number;
  E: number;
  alpha: number;
  beta: number;
  /** N_opt ∝ C^(β/(α+β)); D_opt ∝ C^(α/(α+β)) is one minus it. */
  computeOptimalExponent: number;
  points: number;
  /** The summed Huber loss at the fit. */
  objective: number;
  /** Percentile bootstrap intervals, present when `bootstrap` > 0. */
  intervals?: Partial<Record<ChinchillaParameter, Interval>>;
  confidence?: number;
}

export interface ChinchillaOptions {
  /** Bootstrap resamples for confidence intervals (default 0: none). */
  bootstrap?: number;
  seed?: number;
  /** Central share of the bootstrap distribution the intervals hold (default 0.95). */
  confidence?: number;
}

/** Five parameters, so at least one residual degree of freedom. */
export const CHINCHILLA_MIN_POINTS = 6;

/**
 * The grid of starting points (docs/design.md#chinchilla-approach-3), [a, b, e, α, β]: α, β ∈ {0, 0.5, …, 2},
 * e ∈ {−1, −0.5, …, 1}, a, b ∈ {0, 5, …, 25} — 4500 in all.
 */
export function chinchillaStartGrid(): Float64Array[] {
  const exponents = [0, 0.5, 1, 1.5, 2];
  const offsets = [-1, -0.5, 0, 0.5, 1];
  const scales = [0, 5, 10, 15, 20, 25];
  const starts: Float64Array[] = [];
  for (const a of scales)
    for (const b of scales)
      for (const e of offsets)
        for (const alpha of exponents) for (const beta of exponents) starts.push(Float64Array.of(a, b, e, alpha, beta));
  return starts;
}

// The grid only has to find the right basins: each start stops early (a Huber objective this
// close to L1 creeps for hundreds of iterations near its minimum), and the best few distinct
// minima are then polished to full precision and compared again.
const GRID_SEARCH: LbfgsOptions = { maxIterations: 500, gradientTolerance: 1e-6, valueTolerance: 1e-8 };
const POLISH: LbfgsOptions = { maxIterations: 5000, gradientTolerance: 1e-12, valueTolerance: 0 };
const POLISHED_CANDIDATES = 8;
/** Distinct local minima of the full-data fit that each bootstrap refit starts from. */
const BOOTSTRAP_STARTS = 4;

/**
 * Fits L(N, D) = E + A/N^α + B/D^β the way Hoffmann et al. (2022) and Epoch AI's replication
 * do: in the log parametrisation A = eᵃ, B = eᵇ, E = eᵉ, minimising the summed Huber loss
 * (δ = 10⁻³) of log-loss residuals with L-BFGS from every start of that grid, keeping
 * the best. Bootstrap refits start only from the full fit's best few local minima, which keeps
 * a resample at milliseconds instead of a 4500-start search.
 */
export function fitChinchilla(points: readonly ChinchillaPoint[], options: ChinchillaOptions = {}): ChinchillaFit {
  const bootstrap = options.bootstrap ?? 0;
  const confidence = options.confidence ?? 0.95;
  checkBootstrapOptions('fitChinchilla', bootstrap, confidence);
  checkPoints(points);
  const data = toData(
    points,
    points.map((_, index) => index),
  );
  const objective = chinchillaObjective(data);

  const candidates = distinctMinima(
    chinchillaStartGrid().map((start) => minimizeLbfgs(objective, start, GRID_SEARCH)),
    POLISHED_CANDIDATES,
  );
  const minima = distinctMinima(
    candidates.map((candidate) => minimizeLbfgs(objective, candidate.x, POLISH)),
    BOOTSTRAP_STARTS,
  );
  const best = minima[0] as LbfgsResult;
  const fit: ChinchillaFit = { ...fromVector(best.x), points: points.length, objective: best.value };
  if (bootstrap === 0) return fit;

  const starts = minima.map((minimum) => minimum.x);
  const samples: Record<ChinchillaParameter, number[]> = { A: [], B: [], E: [], alpha: [], beta: [] };
  for (const indices of bootstrapResamples(points.length, bootstrap, options.seed ?? 0)) {
    const resampled = chinchillaObjective(toData(points, indices));
    let best: LbfgsResult | undefined;
    for (const start of starts) {
      const result = minimizeLbfgs(resampled, start, POLISH);
      if (best === undefined || result.value < best.value) best = result;
    }
    const refit = fromVector((best as LbfgsResult).x);
    for (const key of Object.keys(samples) as ChinchillaParameter[]) samples[key].push(refit[key]);
  }
  const intervals: Partial<Record<ChinchillaParameter, Interval>> = {};
  for (const key of Object.keys(samples) as ChinchillaParameter[]) {
    intervals[key] = percentileInterval(samples[key], confidence);
  }
  return { ...fit, intervals, confidence };
}

function fromVector(x: Float64Array): Omit<ChinchillaFit, 'points' | 'objective'> {
  const [a, b, e, alpha, beta] = x as unknown as [number, number, number, number, number];
  return {
    A: Math.exp(a),
    B: Math.exp(b),
    E: Math.exp(e),
    alpha,
    beta,
    computeOptimalExponent: beta / (alpha + beta),
  };
}

/** The `count` lowest results whose parameters differ, best first (ties keep grid order). */
function distinctMinima(results: LbfgsResult[], count: number): LbfgsResult[] {
  const finite = results.filter((result) => Number.isFinite(result.value));
  if (finite.length === 0) throw new InterleaveError('fitChinchilla: no start of the grid reached a finite objective');
  const ordered = finite
    .map((result, order) => ({ result, order }))
    .sort((p, q) => p.result.value - q.result.value || p.order - q.order);
  const chosen: LbfgsResult[] = [];
  for (const { result } of ordered) {
    if (chosen.length === count) break;
    if (chosen.every((other) => maxDifference(other.x, result.x) > 1e-3)) chosen.push(result);
  }
  return chosen;
}

function maxDifference(a: Float64Array, b: Float64Array): number {
  let largest = 0;
  for (let i = 0; i < a.length; i++) largest = Math.max(largest, Math.abs((a[i] as number) - (b[i] as number)));
  return largest;
}

function toData(points: readonly ChinchillaPoint[], indices: ArrayLike<number>): ChinchillaData {
  const size = indices.length;
  const data = { logN: new Float64Array(size), logD: new Float64Array(size), logLoss: new Float64Array(size) };
  for (let i = 0; i < size; i++) {
    const point = points[indices[i] as number] as ChinchillaPoint;
    data.logN[i] = Math.log(point.n);
    data.logD[i] = Math.log(point.d);
    data.logLoss[i] = Math.log(point.loss);
  }
  return data;
}

function checkPoints(points: readonly ChinchillaPoint[]): void {
  if (points.length < CHINCHILLA_MIN_POINTS) {
    throw new InterleaveError(
      `a Chinchilla fit needs at least ${CHINCHILLA_MIN_POINTS} points (5 parameters), got ${points.length}`,
    );
  }
  points.forEach((point, index) => {
    for (const key of ['n', 'd', 'loss'] as const) {
      if (!(Number.isFinite(point[key]) && point[key] > 0)) {
        throw new InterleaveError(`point ${index}: ${key} must be a positive number, got ${point[key]}`);
      }
    }
  });
}
