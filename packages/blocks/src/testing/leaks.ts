import * as tf from '@tensorflow/tfjs';
import { BlockContractError } from './shared.js';

export interface LeakResult {
  readonly ok: boolean;
  /** numTensors after the second run minus before it (0 when nothing leaks). */
  readonly leaked: number;
  /** The same for the first run, which may legitimately build caches. */
  readonly firstRunDelta: number;
  readonly message: string;
}

/**
 * Runs `fn` twice and compares `tf.memory().numTensors` before and after the second run. The
 * first run is a warm-up (lazily built caches are allowed). Whatever `fn` returns (a tensor, an
 * array or object of tensors, or a promise of one) is disposed after each run, so `fn` may
 * return its outputs instead of disposing them.
 */
export async function checkNoLeak(fn: () => unknown, label = 'fn'): Promise<LeakResult> {
  const start = tf.memory().numTensors;
  tf.dispose(toContainer(await fn()));
  const before = tf.memory().numTensors;
  tf.dispose(toContainer(await fn()));
  const after = tf.memory().numTensors;
  const leaked = after - before;
  const firstRunDelta = before - start;
  let message: string;
  if (leaked > 0) message = `${label} leaks ${leaked} tensor(s) per call (numTensors ${before} → ${after})`;
  else if (leaked < 0) {
    message = `${label} disposed ${-leaked} tensor(s) it does not own (numTensors ${before} → ${after})`;
  } else message = `${label} does not leak (first call kept ${firstRunDelta} tensor(s))`;
  return { ok: leaked === 0, leaked, firstRunDelta, message };
}

/** `checkNoLeak`, throwing its message on failure (for `it(...)`). */
export async function expectNoLeak(fn: () => unknown, label = 'fn'): Promise<LeakResult> {
  const result = await checkNoLeak(fn, label);
  if (!result.ok) throw new BlockContractError(result.message);
  return result;
}

function toContainer(value: unknown): tf.TensorContainer {
  if (value instanceof tf.Tensor || Array.isArray(value)) return value as tf.TensorContainer;
  if (value !== null && typeof value === 'object') return value as tf.TensorContainer;
  return undefined;
}
