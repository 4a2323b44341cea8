import type { Mixer, MixerState } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import {
  BlockContractError,
  expectState,
  expectTensor,
  formatIndex,
  forwardValues,
  inputRng,
  randomNormalArray,
  resolveSequence,
  type SequenceOptions,
  sci,
  stateTensors,
} from './shared.js';

export interface StepCheckOptions extends SequenceOptions {
  /** Max |step − forward| allowed; default 1e-4 (docs/design.md#block-contract, float32). */
  readonly tolerance?: number;
  /**
   * Run forward and one step once before counting tensors, so that caches a mixer builds on
   * first use (RoPE tables, masks) are not reported as leaks. Default true.
   */
  readonly warmup?: boolean;
}

export interface StepCheckResult {
  readonly ok: boolean;
  /** max |y_step − y_forward| over all of [B, L, D]. */
  readonly maxAbsDiff: number;
  /** Where that was, e.g. `[b=1, t=7, c=3]`, or null when all equal. */
  readonly worst: string | null;
  /** max |y_step − y_forward| at each position t: drift shows as growth along t. */
  readonly maxDiffPerPosition: readonly number[];
  /** Tensors alive after the check minus before (every state, input and output is disposed). */
  readonly leakedTensors: number;
  /** Contract breaches other than the difference and leaks (a disposed input state, ...). */
  readonly problems: readonly string[];
  readonly message: string;
}

/**
 * Runs `forward` on x [B, L, D] and `step` token by token from `initState(B)`, disposing each
 * state once the next exists (as a generation loop does), and compares the outputs.
 */
export async function checkStepMatchesForward(mixer: Mixer, options: StepCheckOptions): Promise<StepCheckResult> {
  const shape = resolveSequence(options, { batch: 2, seqLen: 8 });
  const { batch, seqLen, dModel } = shape;
  const tolerance = options.tolerance ?? 1e-4;
  const rng = inputRng(shape.seed, 'step');
  const values = randomNormalArray(rng, batch * seqLen * dModel);

  if (options.warmup ?? true) {
    await forwardValues(mixer, values, shape);
    const state = mixer.initState(batch);
    const x = tokenAt(values, 0, shape);
    const result = mixer.step(x, state);
    tf.dispose([x, result as unknown as tf.TensorContainer, state as unknown as tf.TensorContainer]);
  }

  const before = tf.memory().numTensors;
  const problems: string[] = [];
  const disposedInput: number[] = [];
  const sharedTensors: number[] = [];
  const aliasedIO: number[] = [];
  const forwardOut = await forwardValues(mixer, values, shape);
  const stepOut = new Float32Array(forwardOut.length);
  let state: MixerState = mixer.initState(batch);
  expectState(state, `initState(${batch})`);
  try {
    for (let t = 0; t < seqLen; t++) {
      const x = tokenAt(values, t, shape);
      const result = mixer.step(x, state);
      if (result === null || typeof result !== 'object') {
        x.dispose();
        throw new BlockContractError(`step must return { y, state }, got ${result === null ? 'null' : typeof result}`);
      }
      expectTensor(result.y, [batch, dModel], `step (t=${t}) y`);
      expectState(result.state, `step (t=${t}) state`);
      const y = (await result.y.data()) as Float32Array;
      for (let b = 0; b < batch; b++) {
        stepOut.set(y.subarray(b * dModel, (b + 1) * dModel), (b * seqLen + t) * dModel);
      }
      const oldTensors = stateTensors(state);
      const newTensors = new Set(stateTensors(result.state));
      if (newTensors.has(x) || newTensors.has(result.y)) aliasedIO.push(t);
      // What the state holds is freed with the state, later.
      if (!newTensors.has(result.y)) result.y.dispose();
      if (!newTensors.has(x)) x.dispose();
      if (oldTensors.some((tensor) => tensor.isDisposed)) disposedInput.push(t);
      if (oldTensors.some((tensor) => newTensors.has(tensor))) sharedTensors.push(t);
      for (const tensor of oldTensors) if (!newTensors.has(tensor)) tensor.dispose();
      state = result.state;
    }
  } catch (error) {
    tf.dispose(state as unknown as tf.TensorContainer);
    throw error;
  }
  tf.dispose(state as unknown as tf.TensorContainer);
  if (disposedInput.length > 0) {
    problems.push(
      `step disposed tensors of the state passed in (at t = ${disposedInput.join(', ')}); the caller owns that state`,
    );
  }
  if (sharedTensors.length > 0) {
    problems.push(
      `step put tensors of its input state into the state it returned (at t = ${sharedTensors.join(', ')}); callers ` +
        'dispose the old state after each step, which would free them: return new tensors (e.g. tf.clone)',
    );
  }
  if (aliasedIO.length > 0) {
    problems.push(
      `step put its input x or its output y itself into the state it returned (at t = ${aliasedIO.join(', ')}); ` +
        'the caller disposes both after the step: store a copy',
    );
  }
  const leakedTensors = tf.memory().numTensors - before;
  if (leakedTensors > 0) {
    problems.push(
      `${leakedTensors} tensor(s) leaked over one forward and ${seqLen} steps (every output and state was disposed)`,
    );
  }

  let maxAbsDiff = 0;
  let worstAt = -1;
  const maxDiffPerPosition = new Array<number>(seqLen).fill(0);
  for (let i = 0; i < forwardOut.length; i++) {
    let diff = Math.abs((stepOut[i] as number) - (forwardOut[i] as number));
    if (Number.isNaN(diff)) diff = Number.POSITIVE_INFINITY;
    const t = Math.floor(i / dModel) % seqLen;
    maxDiffPerPosition[t] = Math.max(maxDiffPerPosition[t] as number, diff);
    if (diff > maxAbsDiff) {
      maxAbsDiff = diff;
      worstAt = i;
    }
  }
  const worst = worstAt < 0 ? null : formatIndex(worstAt, [batch, seqLen, dModel], ['b', 't', 'c']);
  const matches = maxAbsDiff <= tolerance;
  const ok = matches && problems.length === 0;
  const lines = [
    `step ${matches ? 'matches' : 'DOES NOT MATCH'} forward (x [${batch}, ${seqLen}, ${dModel}]): max |step − forward| ` +
      `${sci(maxAbsDiff)}${worst ? ` at ${worst}` : ''}, tolerance ${sci(tolerance)}`,
    `  per position: ${maxDiffPerPosition.map(sci).join(' ')}`,
    ...problems.map((problem) => `  PROBLEM: ${problem}`),
  ];
  return { ok, maxAbsDiff, worst, maxDiffPerPosition, leakedTensors, problems, message: lines.join('\n') };
}

/** x[:, t, :] as a fresh [B, D] tensor, built from the host copy so no slicing kernel is needed. */
function tokenAt(
  values: Float32Array,
  t: number,
  shape: { batch: number; seqLen: number; dModel: number },
): tf.Tensor2D {
  const { batch, seqLen, dModel } = shape;
  const token = new Float32Array(batch * dModel);
  for (let b = 0; b < batch; b++) {
    const start = (b * seqLen + t) * dModel;
    token.set(values.subarray(start, start + dModel), b * dModel);
  }
  return tf.tensor2d(token, [batch, dModel], 'float32');
}

/** `checkStepMatchesForward`, throwing its message on failure (for `it(...)`). */
export async function expectStepMatchesForward(mixer: Mixer, options: StepCheckOptions): Promise<StepCheckResult> {
  const result = await checkStepMatchesForward(mixer, options);
  if (!result.ok) throw new BlockContractError(result.message);
  return result;
}
