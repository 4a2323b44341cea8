import type { BlockDefinition, MixerState } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { buildBlockForTest } from './build.js';
import { BlockContractError, inputRng, randomNormalArray } from './shared.js';

export interface StateSizeOptions {
  readonly dModel: number;
  /** Sequences stepped together; the check divides by it. Default 2. */
  readonly batch?: number;
  /** Numbers of tokens after which the state is measured, ascending. Default [1, 3, 8]. */
  readonly lengths?: readonly number[];
  /** Seeds parameters and inputs. Default 0. */
  readonly seed?: number;
}

export interface StateSizeMeasurement {
  readonly length: number;
  /** What `definition.stateBytes` declares per sequence. */
  readonly declared: number;
  /** The bytes of the tensors in the state `step` returned, per sequence. */
  readonly actual: number;
}

export interface StateSizeResult {
  readonly ok: boolean;
  readonly measurements: readonly StateSizeMeasurement[];
  readonly message: string;
}

const BYTES_PER_ELEMENT: Readonly<Record<string, number>> = {
  float32: 4,
  int32: 4,
  bool: 1,
  complex64: 8,
};

/** The bytes of every tensor in a state, however deeply nested; numbers are not counted. */
export function stateTensorBytes(state: MixerState): number {
  let total = 0;
  for (const value of Object.values(state)) {
    if (value instanceof tf.Tensor) total += value.size * (BYTES_PER_ELEMENT[value.dtype] ?? 4);
    else if (typeof value === 'object') total += stateTensorBytes(value);
  }
  return total;
}

/**
 * Steps a freshly built block through random tokens and compares, after each of `lengths`
 * tokens, the bytes its state actually holds per sequence with the closed form
 * `definition.stateBytes` declares; also that `growsWithLength` says truly whether the size
 * changed between the lengths measured.
 */
export async function checkStateSize<Config>(
  definition: BlockDefinition<Config>,
  rawConfig: unknown,
  options: StateSizeOptions,
): Promise<StateSizeResult> {
  const { dModel } = options;
  const batch = options.batch ?? 2;
  const lengths = options.lengths ?? [1, 3, 8];
  const seed = options.seed ?? 0;
  const last = lengths.at(-1) ?? 0;
  const block = buildBlockForTest(definition, rawConfig, { dModel, seed });
  const rng = inputRng(seed, 'state-size');
  const measurements: StateSizeMeasurement[] = [];
  let growsDeclared = false;
  let state = block.mixer.initState(batch);
  try {
    for (let t = 1; t <= last; t++) {
      const x = tf.tensor2d(randomNormalArray(rng, batch * dModel), [batch, dModel]);
      const result = block.mixer.step(x, state);
      tf.dispose([x, result.y, state as unknown as tf.TensorContainer]);
      state = result.state;
      if (!lengths.includes(t)) continue;
      const declared = definition.stateBytes(block.config, { dModel, length: t });
      growsDeclared ||= declared.growsWithLength;
      measurements.push({ length: t, declared: declared.bytes, actual: stateTensorBytes(state) / batch });
    }
  } finally {
    tf.dispose(state as unknown as tf.TensorContainer);
    block.dispose();
  }
  const wrong = measurements.filter((m) => m.declared !== m.actual);
  const grows = new Set(measurements.map((m) => m.actual)).size > 1;
  const lines: string[] = [];
  if (wrong.length > 0) {
    const detail = wrong.map((m) => `after ${m.length} token(s) declares ${m.declared}, holds ${m.actual}`);
    lines.push(`stateBytes does not match the state step returns (bytes per sequence): ${detail.join('; ')}`);
  }
  if (measurements.length > 1 && grows !== growsDeclared) {
    lines.push(
      grows
        ? 'the state grows with the sequence, but stateBytes says growsWithLength: false'
        : 'stateBytes says growsWithLength: true, but the state kept one size over the lengths measured',
    );
  }
  const ok = lines.length === 0;
  const sizes = measurements.map((m) => `${m.length}: ${m.actual}`).join(', ');
  return { ok, measurements, message: ok ? `state bytes per sequence match (${sizes})` : lines.join('\n') };
}

/** checkStateSize, throwing a BlockContractError with its message when it fails. */
export async function expectStateSizeMatches<Config>(
  definition: BlockDefinition<Config>,
  rawConfig: unknown,
  options: StateSizeOptions,
): Promise<StateSizeResult> {
  const result = await checkStateSize(definition, rawConfig, options);
  if (!result.ok) throw new BlockContractError(`${definition.name}: ${result.message}`);
  return result;
}
