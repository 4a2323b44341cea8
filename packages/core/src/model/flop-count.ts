/**
 * FLOPs per token, counted analytically from each block's own formula (docs/design.md#flop-counting), so scaling
 * plots use real compute instead of 6·N·D. The conventions every count follows:
 *
 * - A multiply-add is 2 FLOPs. A linear layer of `in` → `out` costs 2·in·out forward (plus
 *   `out` for a bias) and 4·in·out backward (dx = dy·W and dW = dyᵀ·x, plus `out` for db).
 * - Pointwise work (activations, gates, norms, residual adds, softmax) is counted roughly: 1
 *   FLOP per primitive op per element (add, mul, exp, sigmoid, erf, sqrt… each count 1), and
 *   its backward as twice its forward (computing the local derivative, then multiplying by
 *   the incoming gradient).
 * - Recurrences, convolutions and transforms whose backward is not a matmul count the
 *   backward the implementation's formula performs (see each block).
 * - Work that depends on the parameters only — done once per batch, whatever the number of
 *   tokens (Mamba's A = −exp(A_log), Hyena's implicit filters and their spectra) — is not a
 *   per-token cost and is left out. So is the optimizer step (~10 FLOPs per parameter per
 *   step, negligible next to ~6 per parameter per token over thousands of tokens).
 * - The count is the algorithm's intrinsic one, not what a formulation chosen for speed on
 *   one backend happens to execute (masked scores of dense attention, Hyena's DFT-as-matmul
 *   path, the dense form of Griffin's block-diagonal gates, the log L passes of the parallel
 *   scan): every backend of the same model then reports the same compute.
 */
export interface FlopCount {
  readonly forward: number;
  readonly backward: number;
}

export const NO_FLOPS: FlopCount = { forward: 0, backward: 0 };

export function sumFlops(...counts: readonly FlopCount[]): FlopCount {
  return {
    forward: counts.reduce((total, count) => total + count.forward, 0),
    backward: counts.reduce((total, count) => total + count.backward, 0),
  };
}

export function scaleFlops(count: FlopCount, factor: number): FlopCount {
  return { forward: count.forward * factor, backward: count.backward * factor };
}

/** A linear map `in` → `out` per token, optionally with a bias. */
export function linearFlops(inFeatures: number, outFeatures: number, bias = false): FlopCount {
  const products = inFeatures * outFeatures;
  const biasTerm = bias ? outFeatures : 0;
  return { forward: 2 * products + biasTerm, backward: 4 * products + biasTerm };
}

/** `ops` primitive pointwise operations per token (e.g. 5·d for a GeLU over d features). */
export function pointwiseFlops(ops: number): FlopCount {
  return { forward: ops, backward: 2 * ops };
}

/** Pointwise ops per element of the activations the built-in layers use. */
export const ACTIVATION_OPS = {
  /** x · σ(x). */
  silu: 2,
  /** 0.5 · x · (1 + erf(x / √2)). */
  gelu: 5,
  /** log(1 + exp(x)). */
  softplus: 1,
  sigmoid: 1,
} as const;

/** A softmax (or log-softmax) over n entries: max, subtract, exp, sum, normalise. */
export const SOFTMAX_OPS_PER_ENTRY = 5;

/** A causal depthwise convolution with `kernel` taps over `channels` channels: a tiny linear per channel. */
export function depthwiseConvFlops(channels: number, kernel: number, bias = true): FlopCount {
  return scaleFlops(linearFlops(kernel, 1, bias), channels);
}

/**
 * Keys each query of a causal sequence of `seqLen` sees on average when it attends to the
 * last `window` positions (itself included; `null` = all earlier ones): exactly
 * (1/L)·Σ_t min(t + 1, w), which is (L + 1)/2 for full attention.
 */
export function averageVisibleKeys(seqLen: number, window: number | null): number {
  const w = window === null ? seqLen : Math.min(window, seqLen);
  const ramp = (w * (w + 1)) / 2; // queries 0..w−1 see 1..w keys
  return (ramp + (seqLen - w) * w) / seqLen;
}
