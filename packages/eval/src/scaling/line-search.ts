/**
 * A line search that finds a step satisfying the strong Wolfe conditions (Nocedal & Wright,
 * "Numerical Optimization", algorithms 3.5 and 3.6): bracket a step, then shrink the bracket
 * with safeguarded cubic interpolation. Strong Wolfe steps keep the L-BFGS curvature pairs
 * positive (sᵀy > 0), which Armijo backtracking alone does not guarantee.
 */

/** Writes the gradient at `x` into `gradient` and returns the value (may be non-finite). */
export type DifferentiableFunction = (x: Float64Array, gradient: Float64Array) => number;

export interface LineSearchOptions {
  /** Sufficient-decrease constant c₁. */
  c1: number;
  /** Curvature constant c₂ (0.9 is the usual choice for quasi-Newton directions). */
  c2: number;
  /** Objective evaluations allowed in one search. */
  maxEvaluations: number;
}

export const DEFAULT_LINE_SEARCH: LineSearchOptions = { c1: 1e-4, c2: 0.9, maxEvaluations: 40 };

/** Buffers for a line search along `direction` from `x`; the accepted point is left in `x`, `gradient`. */
export interface LineSearchState {
  x: Float64Array;
  gradient: Float64Array;
  value: number;
  direction: Float64Array;
  /** Work buffers of x's length, allocated once per minimisation rather than per search. */
  scratch: LineSearchScratch;
}

export interface LineSearchScratch {
  origin: Float64Array;
  trialX: Float64Array;
  trialGradient: Float64Array;
  bestX: Float64Array;
  bestGradient: Float64Array;
}

export function lineSearchScratch(size: number): LineSearchScratch {
  return {
    origin: new Float64Array(size),
    trialX: new Float64Array(size),
    trialGradient: new Float64Array(size),
    bestX: new Float64Array(size),
    bestGradient: new Float64Array(size),
  };
}

export interface LineSearchResult {
  /** The accepted step length, or 0 when no acceptable step was found (the state is unchanged). */
  step: number;
  evaluations: number;
}

interface Sample {
  step: number;
  value: number;
  slope: number;
}

/**
 * Searches along `state.direction` (a descent direction) starting with step `initialStep`.
 * On success `state.x`, `state.gradient` and `state.value` hold the new point.
 */
export function strongWolfeSearch(
  objective: DifferentiableFunction,
  state: LineSearchState,
  initialStep: number,
  options: LineSearchOptions = DEFAULT_LINE_SEARCH,
): LineSearchResult {
  const { x, direction } = state;
  const size = x.length;
  const { origin, trialX, trialGradient, bestX, bestGradient } = state.scratch;
  origin.set(x);
  // The best point that satisfies sufficient decrease, kept so that a search that runs out of
  // evaluations can still return an Armijo step instead of nothing.
  let best: Sample | undefined;

  const start: Sample = { step: 0, value: state.value, slope: dot(state.gradient, direction) };
  let evaluations = 0;

  const evaluate = (step: number): Sample => {
    for (let i = 0; i < size; i++) trialX[i] = (origin[i] as number) + step * (direction[i] as number);
    const value = objective(trialX, trialGradient);
    evaluations++;
    const sample = { step, value, slope: dot(trialGradient, direction) };
    if (sufficientDecrease(sample) && (best === undefined || sample.value < best.value)) {
      best = sample;
      bestX.set(trialX);
      bestGradient.set(trialGradient);
    }
    return sample;
  };
  const sufficientDecrease = (sample: Sample) =>
    Number.isFinite(sample.value) && sample.value <= start.value + options.c1 * sample.step * start.slope;
  const curvatureHolds = (sample: Sample) =>
    Number.isFinite(sample.slope) && Math.abs(sample.slope) <= -options.c2 * start.slope;
  const accept = (sample: Sample): LineSearchResult => {
    x.set(trialX);
    state.gradient.set(trialGradient);
    state.value = sample.value;
    return { step: sample.step, evaluations };
  };
  const acceptBest = (): LineSearchResult => {
    if (best === undefined) {
      x.set(origin);
      return { step: 0, evaluations };
    }
    x.set(bestX);
    state.gradient.set(bestGradient);
    state.value = best.value;
    return { step: best.step, evaluations };
  };

  // Zoom keeps `low` as the best step seen that satisfies sufficient decrease and `high` so
  // that [low, high] brackets a strong Wolfe step.
  const zoom = (low: Sample, high: Sample): LineSearchResult => {
    while (evaluations < options.maxEvaluations) {
      const width = Math.abs(high.step - low.step);
      if (width <= 1e-16 * Math.max(1, Math.abs(low.step))) break;
      const trial = evaluate(interpolate(low, high));
      if (!sufficientDecrease(trial) || trial.value >= low.value) {
        high = trial;
      } else {
        if (curvatureHolds(trial)) return accept(trial);
        if (trial.slope * (high.step - low.step) >= 0) high = low;
        low = trial;
      }
    }
    return acceptBest();
  };

  let previous = start;
  let step = initialStep;
  while (evaluations < options.maxEvaluations) {
    const trial = evaluate(step);
    if (!sufficientDecrease(trial) || (previous.step > 0 && trial.value >= previous.value)) {
      return zoom(previous, trial);
    }
    if (curvatureHolds(trial)) return accept(trial);
    if (trial.slope >= 0) return zoom(trial, previous);
    previous = trial;
    // Still descending steeply: the minimum along the line lies further out.
    step *= 4;
  }
  return acceptBest();
}

/**
 * The minimiser of the cubic through both ends' values and slopes, kept inside the middle 80%
 * of the bracket so that the bracket shrinks every time; bisection where the cubic is useless
 * (a non-finite end, no real minimiser).
 */
function interpolate(low: Sample, high: Sample): number {
  const lo = Math.min(low.step, high.step);
  const hi = Math.max(low.step, high.step);
  const margin = 0.1 * (hi - lo);
  const midpoint = 0.5 * (lo + hi);
  if (!Number.isFinite(high.value) || !Number.isFinite(high.slope)) return midpoint;
  const d1 = low.slope + high.slope - (3 * (low.value - high.value)) / (low.step - high.step);
  const radicand = d1 * d1 - low.slope * high.slope;
  if (!(radicand >= 0)) return midpoint;
  const d2 = Math.sign(high.step - low.step) * Math.sqrt(radicand);
  const denominator = high.slope - low.slope + 2 * d2;
  if (denominator === 0) return midpoint;
  const step = high.step - (high.step - low.step) * ((high.slope + d2 - d1) / denominator);
  if (!Number.isFinite(step)) return midpoint;
  return Math.min(hi - margin, Math.max(lo + margin, step));
}

export function dot(a: Float64Array, b: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i] as number) * (b[i] as number);
  return sum;
}
