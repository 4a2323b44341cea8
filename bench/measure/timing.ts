import { resetWebgpuPeak, webgpuMemory } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { PeakRss } from './memory.js';

export interface RepeatPlan {
  /** Untimed runs first (at least one): JIT, kernel caches and the wasm heap settle. */
  readonly warmup: number;
  /** Timed runs at most; the median is reported. */
  readonly repeats: number;
  /** Every warm-up and timed run, however slow (docs/design.md#benchmarks: after 3 warm-up steps). */
  readonly exact?: boolean;
  /**
   * Whether the first warm-up run goes through `tf.profile` (default true). Off for runs of
   * ~10^5 kernels: the profiler times every kernel, and where the backend has no GPU timer it
   * reads every kernel's output back (`dataSync`), which took a 1,024-token step-mode run past
   * five minutes on the H200.
   */
  readonly profileMemory?: boolean;
}

export interface Measurement {
  /** Median over the timed runs, milliseconds. */
  readonly medianMs: number;
  readonly samplesMs: readonly number[];
  /** The most bytes tfjs held in tensors during one run (tf.profile of the first warm-up run); null unprofiled. */
  readonly peakTensorBytes: number | null;
  /** The process's peak resident set over the whole measurement (warm-up included). */
  readonly peakRssBytes: number;
  /**
   * On webgpu, the most bytes held in GPU buffers over the whole measurement (tfjs's pooled
   * buffers included: what the GPU actually gave); null on other backends.
   */
  readonly peakGpuBytes: number | null;
}

/** A run this slow needs no further warm-up, and its timed runs stop once they pass TIME_BUDGET_MS. */
const SLOW_RUN_MS = 5_000;
const TIME_BUDGET_MS = 30_000;

/**
 * Times `run` (which must finish its work, reading a result back, before it resolves). The first
 * warm-up run goes through `tf.profile` to find the tensor-memory peak — profiling slows every
 * kernel, so that run is never timed — then the other warm-up runs, then up to `repeats` timed
 * runs. Runs of several seconds (dense attention at L = 4096) skip the extra warm-up and stop
 * timing after TIME_BUDGET_MS, with at least one timed run.
 */
export async function measure(run: () => Promise<void>, plan: RepeatPlan): Promise<Measurement> {
  const rss = PeakRss.start();
  resetWebgpuPeak();
  const profiled = performance.now();
  const profile = plan.profileMemory === false ? undefined : await tf.profile(run);
  if (profile === undefined) await run();
  const slow = !plan.exact && performance.now() - profiled > SLOW_RUN_MS;
  if (!slow) for (let i = 1; i < plan.warmup; i++) await run();
  const samplesMs: number[] = [];
  const timing = performance.now();
  const withinBudget = () => plan.exact || samplesMs.length === 0 || performance.now() - timing < TIME_BUDGET_MS;
  while (samplesMs.length < plan.repeats && withinBudget()) {
    const started = performance.now();
    await run();
    samplesMs.push(performance.now() - started);
  }
  return {
    medianMs: median(samplesMs),
    samplesMs,
    peakTensorBytes: profile?.peakBytes ?? null,
    peakRssBytes: rss.read(),
    peakGpuBytes: webgpuMemory()?.peakBytes ?? null,
  };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

export function mean(values: readonly number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((sum, value) => sum + value, 0) / values.length;
}
