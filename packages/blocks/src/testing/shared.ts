import type { Mixer, MixerState } from '@interleave/core';
import { SeededRandom } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';

/** Thrown when a mixer breaks the contract outright (wrong shape, a disposed input, ...). */
export class BlockContractError extends Error {
  override name = 'BlockContractError';
}

/** The size of the test sequences: x is [batch, seqLen, dModel]. */
export interface SequenceOptions {
  /** The mixer's d_model (the width it was built with). */
  readonly dModel: number;
  readonly batch?: number;
  readonly seqLen?: number;
  /** Seeds the random inputs (not the parameters). */
  readonly seed?: number;
}

export interface ResolvedSequence {
  readonly batch: number;
  readonly seqLen: number;
  readonly dModel: number;
  readonly seed: number;
}

export function resolveSequence(
  options: SequenceOptions,
  defaults: { batch: number; seqLen: number },
): ResolvedSequence {
  const resolved = {
    batch: options.batch ?? defaults.batch,
    seqLen: options.seqLen ?? defaults.seqLen,
    dModel: options.dModel,
    seed: options.seed ?? 0,
  };
  for (const [key, value] of Object.entries(resolved)) {
    if (key !== 'seed' && (!Number.isInteger(value) || value < 1)) {
      throw new BlockContractError(`${key} must be a positive integer, got ${value}`);
    }
  }
  return resolved;
}

/**
 * Standard-normal values from the project's own generator, so that every backend sees the
 * same inputs (tfjs's random ops differ between backends).
 */
export function randomNormalArray(rng: SeededRandom, size: number, std = 1): Float32Array {
  return Float32Array.from({ length: size }, () => rng.normal(0, std));
}

export function inputRng(seed: number, purpose: string): SeededRandom {
  return new SeededRandom(seed, `interleave-testing/${purpose}`);
}

/**
 * Runs `mixer.forward` on `values` (row-major [B, L, D]), checks the output's shape and dtype,
 * and returns its values. Disposes everything it created.
 */
export async function forwardValues(
  mixer: Mixer,
  values: Float32Array,
  shape: ResolvedSequence,
): Promise<Float32Array> {
  const { batch, seqLen, dModel } = shape;
  // A copy: the cpu backend keeps the array it is given, and callers reuse theirs.
  const x = tf.tensor3d(values.slice(), [batch, seqLen, dModel], 'float32');
  let y: tf.Tensor | undefined;
  try {
    y = mixer.forward(x);
    expectTensor(y, [batch, seqLen, dModel], 'forward(x [B, L, D])');
    if (x.isDisposed) throw new BlockContractError('forward disposed its input x; the caller owns it');
    const out = (await y.data()) as Float32Array;
    const bad = out.findIndex((value) => !Number.isFinite(value));
    if (bad >= 0) {
      const at = formatIndex(bad, [batch, seqLen, dModel], ['b', 't', 'c']);
      throw new BlockContractError(`forward returned ${out[bad]} at ${at} for a standard-normal input`);
    }
    return out;
  } finally {
    x.dispose();
    y?.dispose();
  }
}

/** Throws a readable error unless `value` is a float32 tensor of `shape`. */
export function expectTensor(value: unknown, shape: readonly number[], what: string): asserts value is tf.Tensor {
  if (!(value instanceof tf.Tensor)) {
    throw new BlockContractError(`${what} must return a tf.Tensor, got ${describeValue(value)}`);
  }
  if (value.isDisposed) throw new BlockContractError(`${what} returned a tensor that is already disposed`);
  if (!sameShape(value.shape, shape)) {
    throw new BlockContractError(`${what} returned shape [${value.shape}], expected [${shape}]`);
  }
  if (value.dtype !== 'float32')
    throw new BlockContractError(`${what} returned dtype ${value.dtype}, expected float32`);
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((size, axis) => size === b[axis]);
}

/** Every tensor inside a mixer state (plain objects and arrays of tensors and numbers). */
export function stateTensors(state: unknown, found: tf.Tensor[] = []): tf.Tensor[] {
  if (state instanceof tf.Tensor) {
    found.push(state);
  } else if (Array.isArray(state)) {
    for (const item of state) stateTensors(item, found);
  } else if (state !== null && typeof state === 'object') {
    for (const item of Object.values(state)) stateTensors(item, found);
  }
  return found;
}

/** Throws unless `state` is a plain object of tensors, numbers and nested such objects. */
export function expectState(state: unknown, what: string): asserts state is MixerState {
  if (state === null || typeof state !== 'object' || Array.isArray(state) || state instanceof tf.Tensor) {
    throw new BlockContractError(
      `${what} must return a plain object of tensors and numbers, got ${describeValue(state)}`,
    );
  }
}

/** `[b=1, t=4, c=0]` for a flat index into a row-major tensor with these axis names. */
export function formatIndex(flat: number, shape: readonly number[], axisNames?: readonly string[]): string {
  const parts = unravelIndex(flat, shape).map((coordinate, axis) => {
    const name = axisNames?.[axis];
    return name === undefined ? `${coordinate}` : `${name}=${coordinate}`;
  });
  return `[${parts.join(', ')}]`;
}

export function unravelIndex(flat: number, shape: readonly number[]): number[] {
  const coordinates = new Array<number>(shape.length).fill(0);
  let rest = flat;
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    const size = shape[axis] as number;
    coordinates[axis] = rest % size;
    rest = Math.floor(rest / size);
  }
  return coordinates;
}

/** Compact scientific notation for messages. */
export function sci(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (value === 0) return '0';
  return value.toExponential(2);
}
