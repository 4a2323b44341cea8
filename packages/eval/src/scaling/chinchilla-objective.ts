import type { DifferentiableFunction } from './lbfgs.js';

/** The Huber threshold on log-loss residuals (docs/design.md#chinchilla-approach-3). */
export const CHINCHILLA_HUBER_DELTA = 1e-3;

/** Observations in the form the objective reads: logs of N, D and the loss. */
export interface ChinchillaData {
  logN: Float64Array;
  logD: Float64Array;
  logLoss: Float64Array;
}

/** Parameter vector layout: [a, b, e, α, β] with A = eᵃ, B = eᵇ, E = eᵉ. */
export const CHINCHILLA_PARAMETERS = ['a', 'b', 'e', 'alpha', 'beta'] as const;

/**
 * Σᵢ Huber_δ(LSE(a − α·log Nᵢ, b − β·log Dᵢ, e) − log Lᵢ) with its analytic gradient.
 * Huber_δ(r) = r²/2 for |r| ≤ δ, δ·(|r| − δ/2) beyond (PyTorch's definition, which Epoch AI's
 * replication used). The log-sum-exp subtracts the largest term, so no exponent overflows
 * whatever the parameters.
 */
export function chinchillaObjective(data: ChinchillaData, delta = CHINCHILLA_HUBER_DELTA): DifferentiableFunction {
  const { logN, logD, logLoss } = data;
  const count = logLoss.length;
  return (x, gradient) => {
    const a = x[0] as number;
    const b = x[1] as number;
    const e = x[2] as number;
    const alpha = x[3] as number;
    const beta = x[4] as number;
    let value = 0;
    let gradA = 0;
    let gradB = 0;
    let gradE = 0;
    let gradAlpha = 0;
    let gradBeta = 0;
    for (let i = 0; i < count; i++) {
      const n = logN[i] as number;
      const d = logD[i] as number;
      const termN = a - alpha * n;
      const termD = b - beta * d;
      const largest = Math.max(termN, termD, e);
      const weightN = Math.exp(termN - largest);
      const weightD = Math.exp(termD - largest);
      const weightE = Math.exp(e - largest);
      const total = weightN + weightD + weightE;
      const residual = largest + Math.log(total) - (logLoss[i] as number);
      let slope: number;
      if (Math.abs(residual) <= delta) {
        value += 0.5 * residual * residual;
        slope = residual;
      } else {
        value += delta * (Math.abs(residual) - 0.5 * delta);
        slope = residual > 0 ? delta : -delta;
      }
      // ∂LSE/∂termₖ is term k's softmax weight.
      const scale = slope / total;
      gradA += scale * weightN;
      gradAlpha -= scale * weightN * n;
      gradB += scale * weightD;
      gradBeta -= scale * weightD * d;
      gradE += scale * weightE;
    }
    gradient[0] = gradA;
    gradient[1] = gradB;
    gradient[2] = gradE;
    gradient[3] = gradAlpha;
    gradient[4] = gradBeta;
    return value;
  };
}
