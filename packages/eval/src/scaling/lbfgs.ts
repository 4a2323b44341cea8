import {
  DEFAULT_LINE_SEARCH,
  type DifferentiableFunction,
  dot,
  lineSearchScratch,
  strongWolfeSearch,
} from './line-search.js';

export type { DifferentiableFunction } from './line-search.js';

export interface LbfgsOptions {
  /** Curvature pairs kept for the inverse-Hessian approximation. */
  memory?: number;
  maxIterations?: number;
  /** Stop when the largest gradient component is at most this. */
  gradientTolerance?: number;
  /** Stop when an iteration lowers the value by at most this fraction of it (scipy's `ftol`). */
  valueTolerance?: number;
}

/** Why the minimiser stopped: converged on the gradient or the value, or gave up. */
export type LbfgsStop = 'gradient' | 'value' | 'iterations' | 'line-search' | 'non-finite-start';

export interface LbfgsResult {
  x: Float64Array;
  value: number;
  gradientNorm: number;
  iterations: number;
  evaluations: number;
  stop: LbfgsStop;
}

const DEFAULTS: Required<LbfgsOptions> = {
  memory: 10,
  maxIterations: 1000,
  gradientTolerance: 1e-10,
  valueTolerance: 1e-13,
};

/**
 * Limited-memory BFGS (Nocedal & Wright, algorithm 7.5) with the two-loop recursion and a
 * strong Wolfe line search. Unconstrained; `objective` must return the value and fill the
 * analytic gradient. Non-finite values are treated as "too far" by the line search.
 */
export function minimizeLbfgs(
  objective: DifferentiableFunction,
  start: ArrayLike<number>,
  options: LbfgsOptions = {},
): LbfgsResult {
  const { memory, maxIterations, gradientTolerance, valueTolerance } = { ...DEFAULTS, ...options };
  const size = start.length;
  const x = Float64Array.from(start);
  const gradient = new Float64Array(size);
  let value = objective(x, gradient);
  let evaluations = 1;
  if (!Number.isFinite(value) || !allFinite(gradient)) {
    return { x, value, gradientNorm: Number.POSITIVE_INFINITY, iterations: 0, evaluations, stop: 'non-finite-start' };
  }

  const history = new CurvatureHistory(memory, size);
  const direction = new Float64Array(size);
  const previousX = new Float64Array(size);
  const previousGradient = new Float64Array(size);
  const state = { x, gradient, value, direction, scratch: lineSearchScratch(size) };

  let iterations = 0;
  let stop: LbfgsStop = 'iterations';
  while (iterations < maxIterations) {
    if (maxAbs(gradient) <= gradientTolerance) {
      stop = 'gradient';
      break;
    }
    history.applyInverseHessian(gradient, direction);
    for (let i = 0; i < size; i++) direction[i] = -(direction[i] as number);
    if (!(dot(direction, gradient) < 0)) {
      // Rounding can spoil the quasi-Newton direction; fall back to steepest descent.
      history.clear();
      for (let i = 0; i < size; i++) direction[i] = -(gradient[i] as number);
    }
    // Without curvature information the direction has the gradient's scale, which can be
    // anything; start with a unit-length step in that case.
    const initialStep = history.length === 0 ? Math.min(1, 1 / Math.sqrt(dot(gradient, gradient))) : 1;

    previousX.set(x);
    previousGradient.set(gradient);
    const previousValue = value;
    state.value = value;
    const search = strongWolfeSearch(objective, state, initialStep, DEFAULT_LINE_SEARCH);
    evaluations += search.evaluations;
    if (search.step === 0) {
      if (history.length > 0) {
        // A stale curvature model can point somewhere useless; retry once from scratch.
        history.clear();
        continue;
      }
      stop = 'line-search';
      break;
    }
    value = state.value;
    iterations++;
    history.push(x, previousX, gradient, previousGradient);
    if (previousValue - value <= valueTolerance * Math.max(Math.abs(previousValue), Math.abs(value), 1)) {
      stop = 'value';
      break;
    }
  }
  return { x, value, gradientNorm: maxAbs(gradient), iterations, evaluations, stop };
}

/** The last `memory` pairs s = Δx, y = Δgradient, in a ring buffer. */
class CurvatureHistory {
  private readonly s: Float64Array[];
  private readonly y: Float64Array[];
  private readonly rho: Float64Array;
  private readonly alpha: Float64Array;
  private readonly scratchS: Float64Array;
  private readonly scratchY: Float64Array;
  private newest = -1;
  length = 0;

  constructor(
    private readonly memory: number,
    size: number,
  ) {
    this.s = Array.from({ length: memory }, () => new Float64Array(size));
    this.y = Array.from({ length: memory }, () => new Float64Array(size));
    this.rho = new Float64Array(memory);
    this.alpha = new Float64Array(memory);
    this.scratchS = new Float64Array(size);
    this.scratchY = new Float64Array(size);
  }

  clear(): void {
    this.length = 0;
    this.newest = -1;
  }

  push(x: Float64Array, previousX: Float64Array, gradient: Float64Array, previousGradient: Float64Array): void {
    const s = this.scratchS;
    const y = this.scratchY;
    for (let i = 0; i < x.length; i++) {
      s[i] = (x[i] as number) - (previousX[i] as number);
      y[i] = (gradient[i] as number) - (previousGradient[i] as number);
    }
    const sy = dot(s, y);
    // A pair without positive curvature would make the approximation indefinite; skip it.
    if (!(sy > 1e-12 * Math.sqrt(dot(s, s) * dot(y, y)))) return;
    const slot = (this.newest + 1) % this.memory;
    (this.s[slot] as Float64Array).set(s);
    (this.y[slot] as Float64Array).set(y);
    this.rho[slot] = 1 / sy;
    this.newest = slot;
    this.length = Math.min(this.length + 1, this.memory);
  }

  /** out = H·gradient by the two-loop recursion, H₀ = γI with γ = sᵀy / yᵀy of the newest pair. */
  applyInverseHessian(gradient: Float64Array, out: Float64Array): void {
    out.set(gradient);
    if (this.length === 0) return;
    for (let k = 0; k < this.length; k++) {
      const slot = (this.newest - k + this.memory) % this.memory;
      const a = (this.rho[slot] as number) * dot(this.s[slot] as Float64Array, out);
      this.alpha[slot] = a;
      axpy(-a, this.y[slot] as Float64Array, out);
    }
    const newestY = this.y[this.newest] as Float64Array;
    const gamma = 1 / ((this.rho[this.newest] as number) * dot(newestY, newestY));
    for (let i = 0; i < out.length; i++) out[i] = gamma * (out[i] as number);
    for (let k = this.length - 1; k >= 0; k--) {
      const slot = (this.newest - k + this.memory) % this.memory;
      const b = (this.rho[slot] as number) * dot(this.y[slot] as Float64Array, out);
      axpy((this.alpha[slot] as number) - b, this.s[slot] as Float64Array, out);
    }
  }
}

function axpy(a: number, x: Float64Array, y: Float64Array): void {
  for (let i = 0; i < x.length; i++) y[i] = (y[i] as number) + a * (x[i] as number);
}

function maxAbs(values: Float64Array): number {
  let largest = 0;
  for (const value of values) largest = Math.max(largest, Math.abs(value));
  return largest;
}

function allFinite(values: Float64Array): boolean {
  for (const value of values) if (!Number.isFinite(value)) return false;
  return true;
}
