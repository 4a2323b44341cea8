import { InterleaveError } from '@interleave/core';
import { bootstrapResamples, checkBootstrapOptions, type Interval, percentileInterval } from './bootstrap.js';
import { type LbfgsOptions, type LbfgsResult, minimizeLbfgs } from './lbfgs.js';
import type { DifferentiableFunction } from './line-search.js';

/** One training run: its training compute C (FLOPs) and final loss. */
export interface ComputePoint {
  compute: number;
  loss: number;
}

/** L(C) = E + A·C^(−α) with percentile bootstrap intervals (docs/design.md#compute-law). */
export interface ComputeLawFit {
  E: number;
  A: number;
  alpha: number;
  intervals: { E: Interval; A: Interval; alpha: Interval };
  points: number;
  confidence: number;
}

export interface ComputeLawOptions {
  /** Bootstrap resamples (default 200). */
  bootstrap?: number;
  seed?: number;
  /** Central share of the bootstrap distribution the intervals hold (default 0.95). */
  confidence?: number;
}

/** Three parameters, so at least one residual degree of freedom. */
export const COMPUTE_LAW_MIN_POINTS = 4;

const FIT: LbfgsOptions = { maxIterations: 1000, gradientTolerance: 1e-9, valueTolerance: 1e-12 };
const START_EXPONENTS = [0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1, 1.5];
/** Starting irreducible losses, as fractions of the smallest observed loss. */
const START_FLOOR_FRACTIONS = [0.001, 0.25, 0.5, 0.75, 0.9, 0.97];
/** Bootstrap refits start from the full fit's optimum and this coarser grid, to stay fast. */
const BOOTSTRAP_EXPONENTS = [0.05, 0.25, 1];
const BOOTSTRAP_FLOOR_FRACTIONS = [0.001, 0.5, 0.9];

/**
 * Fits L(C) = E + A·C^(−α) by least squares on log-loss, in the parametrisation
 * log L̂ = LSE(a − α·log(C/C₀), e) with A = eᵃ·C₀^α and E = eᵉ, from a grid of starts by L-BFGS.
 *
 * Why log-loss: loss noise is roughly proportional to the loss, and the small-loss points that
 * decide E and α would otherwise be outweighed by the large-loss ones; log-loss residuals are
 * relative errors. Why plain least squares and not Chinchilla's Huber: per-architecture sweeps
 * have few points, and a smooth objective gives a smooth estimator for the bootstrap.
 * Why C₀ (the geometric mean of C): FLOP counts near 10¹⁸ make a and α nearly collinear;
 * centring log C decorrelates them. The exponentials keep A, E > 0.
 *
 * Intervals: percentile bootstrap — resample the points with replacement, refit (same starts),
 * take the central `confidence` share of each parameter. Seeded, hence deterministic.
 */
export function fitComputeLaw(points: readonly ComputePoint[], options: ComputeLawOptions = {}): ComputeLawFit {
  const bootstrap = options.bootstrap ?? 200;
  const confidence = options.confidence ?? 0.95;
  checkBootstrapOptions('fitComputeLaw', bootstrap, confidence);
  checkPoints(points);
  const logScale = points.reduce((sum, point) => sum + Math.log(point.compute), 0) / points.length;
  const all = points.map((_, index) => index);
  const full = fitOnce(points, all, logScale, gridStarts(START_EXPONENTS, START_FLOOR_FRACTIONS));
  const fit = toParameters(full, logScale);

  const bootstrapStarts = [full, ...gridStarts(BOOTSTRAP_EXPONENTS, BOOTSTRAP_FLOOR_FRACTIONS)];
  const samples = { E: [] as number[], A: [] as number[], alpha: [] as number[] };
  for (const indices of bootstrapResamples(points.length, bootstrap, options.seed ?? 0)) {
    const refit = toParameters(fitOnce(points, indices, logScale, bootstrapStarts), logScale);
    samples.E.push(refit.E);
    samples.A.push(refit.A);
    samples.alpha.push(refit.alpha);
  }
  // Without resamples the interval collapses onto the estimate rather than being undefined.
  const interval = (values: number[], estimate: number): Interval =>
    values.length === 0 ? { low: estimate, high: estimate } : percentileInterval(values, confidence);
  return {
    ...fit,
    intervals: {
      E: interval(samples.E, fit.E),
      A: interval(samples.A, fit.A),
      alpha: interval(samples.alpha, fit.alpha),
    },
    points: points.length,
    confidence,
  };
}

interface Parameters {
  E: number;
  A: number;
  alpha: number;
}

/** A start: a full parameter vector [a, e, α], or an exponent and a floor fraction to derive one from. */
type Start = Float64Array | { alpha: number; floorFraction: number };

function gridStarts(exponents: readonly number[], fractions: readonly number[]): Start[] {
  return exponents.flatMap((alpha) => fractions.map((floorFraction) => ({ alpha, floorFraction })));
}

/** The best [a, e, α] over `starts` for the points at `indices` (log C centred by `logScale`). */
function fitOnce(
  points: readonly ComputePoint[],
  indices: ArrayLike<number>,
  logScale: number,
  starts: readonly Start[],
): Float64Array {
  const size = indices.length;
  const logCompute = new Float64Array(size);
  const logLoss = new Float64Array(size);
  let smallestLoss = Number.POSITIVE_INFINITY;
  for (let i = 0; i < size; i++) {
    const point = points[indices[i] as number] as ComputePoint;
    logCompute[i] = Math.log(point.compute) - logScale;
    logLoss[i] = Math.log(point.loss);
    smallestLoss = Math.min(smallestLoss, point.loss);
  }
  const objective = logLeastSquares(logCompute, logLoss);
  let best: LbfgsResult | undefined;
  for (const start of starts) {
    let vector = start;
    if (!(vector instanceof Float64Array)) {
      const floor = vector.floorFraction * smallestLoss;
      vector = Float64Array.of(scaleForStart(logCompute, logLoss, floor, vector.alpha), Math.log(floor), vector.alpha);
    }
    const result = minimizeLbfgs(objective, vector, FIT);
    if (best === undefined || result.value < best.value) best = result;
  }
  return (best as LbfgsResult).x;
}

function toParameters(x: Float64Array, logScale: number): Parameters {
  const [a, e, alpha] = x as unknown as [number, number, number];
  return { E: Math.exp(e), A: Math.exp(a + alpha * logScale), alpha };
}

/** The a that makes E + eᵃ·C̃^(−α) match the points on average in log space, for a start. */
function scaleForStart(logCompute: Float64Array, logLoss: Float64Array, floor: number, alpha: number): number {
  let sum = 0;
  for (let i = 0; i < logLoss.length; i++) {
    const excess = Math.max(Math.exp(logLoss[i] as number) - floor, 1e-3 * floor);
    sum += Math.log(excess) + alpha * (logCompute[i] as number);
  }
  return sum / logLoss.length;
}

/** ½Σ(LSE(a − α·x, e) − yᵢ)² over parameters [a, e, α], with its gradient. */
function logLeastSquares(logCompute: Float64Array, logLoss: Float64Array): DifferentiableFunction {
  return (x, gradient) => {
    const a = x[0] as number;
    const e = x[1] as number;
    const alpha = x[2] as number;
    let value = 0;
    let gradA = 0;
    let gradE = 0;
    let gradAlpha = 0;
    for (let i = 0; i < logLoss.length; i++) {
      const c = logCompute[i] as number;
      const term = a - alpha * c;
      const largest = Math.max(term, e);
      const weightTerm = Math.exp(term - largest);
      const weightFloor = Math.exp(e - largest);
      const total = weightTerm + weightFloor;
      const residual = largest + Math.log(total) - (logLoss[i] as number);
      value += 0.5 * residual * residual;
      const scale = residual / total;
      gradA += scale * weightTerm;
      gradAlpha -= scale * weightTerm * c;
      gradE += scale * weightFloor;
    }
    gradient[0] = gradA;
    gradient[1] = gradE;
    gradient[2] = gradAlpha;
    return value;
  };
}

function checkPoints(points: readonly ComputePoint[]): void {
  if (points.length < COMPUTE_LAW_MIN_POINTS) {
    throw new InterleaveError(
      `a compute-law fit needs at least ${COMPUTE_LAW_MIN_POINTS} points (3 parameters), got ${points.length}`,
    );
  }
  points.forEach((point, index) => {
    for (const key of ['compute', 'loss'] as const) {
      if (!(Number.isFinite(point[key]) && point[key] > 0)) {
        throw new InterleaveError(`point ${index}: ${key} must be a positive number, got ${point[key]}`);
      }
    }
  });
}
