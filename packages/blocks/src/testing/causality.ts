import type { Mixer } from '@interleave/core';
import {
  BlockContractError,
  formatIndex,
  forwardValues,
  inputRng,
  randomNormalArray,
  resolveSequence,
  type SequenceOptions,
  sci,
} from './shared.js';

export interface CausalityOptions extends SequenceOptions {
  /**
   * The cut positions t0: inputs at t ≥ t0 are replaced by fresh random values. Default: the
   * middle of the sequence and the last position (plus position 1 when the sequence allows it).
   */
  readonly cuts?: readonly number[];
  /**
   * How far an output before the cut may move, as a multiple of max(1, max |y|): default 1e-6.
   * A causal tfjs implementation usually gives exactly 0; FFT convolutions and blocked
   * reductions whose shapes depend on L round differently, hence the small allowance.
   */
  readonly tolerance?: number;
}

/** What one cut found. */
export interface CausalityProbe {
  readonly cut: number;
  /** Largest |Δy| at positions t < cut. */
  readonly maxPastDiff: number;
  /** Where it was, e.g. `[b=0, t=2, c=5]`. */
  readonly worstPast: string | null;
  /** Largest |Δy| at positions t ≥ cut. */
  readonly maxFutureDiff: number;
  readonly ok: boolean;
}

export interface CausalityResult {
  readonly ok: boolean;
  /** Largest |Δy| before the cut, over all cuts. */
  readonly maxPastDiff: number;
  /** True when, for every cut, some output at t ≥ cut changed (else the check proved nothing). */
  readonly futureChanged: boolean;
  /** The allowed |Δy| before the cut: tolerance · max(1, max |y|). */
  readonly allowed: number;
  readonly details: readonly CausalityProbe[];
  /** A readable account, one line per cut. */
  readonly message: string;
}

export function defaultCuts(seqLen: number): number[] {
  const cuts = [1, Math.floor(seqLen / 2), seqLen - 1].filter((cut) => cut >= 1 && cut < seqLen);
  return [...new Set(cuts)].sort((a, b) => a - b);
}

/**
 * Checks that `mixer.forward` is causal: for each cut t0, replaces the inputs at t ≥ t0 with new
 * random values and checks that no output at t < t0 moves, and that some output at t ≥ t0 does
 * (a forward that ignores its input would otherwise pass vacuously).
 */
export async function checkCausality(mixer: Mixer, options: CausalityOptions): Promise<CausalityResult> {
  const shape = resolveSequence(options, { batch: 2, seqLen: 8 });
  const { batch, seqLen, dModel } = shape;
  if (seqLen < 2) throw new BlockContractError('the causality check needs seqLen ≥ 2');
  const cuts = options.cuts ?? defaultCuts(seqLen);
  for (const cut of cuts) {
    if (!Number.isInteger(cut) || cut < 0 || cut >= seqLen) {
      throw new BlockContractError(`cut ${cut} is outside [0, ${seqLen - 1}]`);
    }
  }
  const rng = inputRng(shape.seed, 'causality');
  const base = randomNormalArray(rng, batch * seqLen * dModel);
  const baseOut = await forwardValues(mixer, base, shape);
  let scale = 1;
  for (const value of baseOut) scale = Math.max(scale, Math.abs(value));
  const allowed = (options.tolerance ?? 1e-6) * scale;

  const details: CausalityProbe[] = [];
  for (const cut of cuts) {
    const perturbed = base.slice();
    for (let b = 0; b < batch; b++) {
      const start = (b * seqLen + cut) * dModel;
      const end = (b + 1) * seqLen * dModel;
      for (let i = start; i < end; i++) perturbed[i] = rng.normal();
    }
    const out = await forwardValues(mixer, perturbed, shape);
    let maxPastDiff = 0;
    let worstAt = -1;
    let maxFutureDiff = 0;
    for (let i = 0; i < out.length; i++) {
      const diff = Math.abs((out[i] as number) - (baseOut[i] as number));
      const position = Math.floor(i / dModel) % seqLen;
      // NaN counts as a change: `diff > x` is false for NaN, so test `!(diff <= x)`.
      if (position < cut) {
        if (!(diff <= maxPastDiff)) {
          maxPastDiff = Number.isNaN(diff) ? Number.POSITIVE_INFINITY : diff;
          worstAt = i;
        }
      } else if (!(diff <= maxFutureDiff)) {
        maxFutureDiff = Number.isNaN(diff) ? Number.POSITIVE_INFINITY : diff;
      }
    }
    details.push({
      cut,
      maxPastDiff,
      worstPast: worstAt < 0 ? null : formatIndex(worstAt, [batch, seqLen, dModel], ['b', 't', 'c']),
      maxFutureDiff,
      ok: maxPastDiff <= allowed && maxFutureDiff > allowed,
    });
  }
  const ok = details.every((probe) => probe.ok);
  const maxPastDiff = Math.max(0, ...details.map((probe) => probe.maxPastDiff));
  const futureChanged = details.every((probe) => probe.maxFutureDiff > allowed);
  const lines = details.map((probe) => describeProbe(probe, allowed));
  const message = `causality ${ok ? 'holds' : 'FAILED'} (x [${batch}, ${seqLen}, ${dModel}], allowed |Δy| before the cut ${sci(allowed)}):\n${lines.join('\n')}`;
  return { ok, maxPastDiff, futureChanged, allowed, details, message };
}

function describeProbe(probe: CausalityProbe, allowed: number): string {
  const head = `  cut t0=${probe.cut}: `;
  if (probe.maxPastDiff > allowed) {
    return `${head}NOT CAUSAL: output at ${probe.worstPast} moved by ${sci(probe.maxPastDiff)} when inputs at t ≥ ${probe.cut} were replaced`;
  }
  if (!(probe.maxFutureDiff > allowed)) {
    return `${head}VACUOUS: no output at t ≥ ${probe.cut} moved (max ${sci(probe.maxFutureDiff)}) when inputs at t ≥ ${probe.cut} were replaced; does forward ignore its input?`;
  }
  return `${head}ok (max |Δy| before the cut ${sci(probe.maxPastDiff)}, at or after it ${sci(probe.maxFutureDiff)})`;
}

/** `checkCausality`, throwing its message when the mixer is not causal (for `it(...)`). */
export async function expectCausal(mixer: Mixer, options: CausalityOptions): Promise<CausalityResult> {
  const result = await checkCausality(mixer, options);
  if (!result.ok) throw new BlockContractError(result.message);
  return result;
}
