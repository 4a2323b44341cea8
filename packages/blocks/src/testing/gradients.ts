import type { BlockDefinition, Mixer, NamedParameter, SeededRandom } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { type BuiltBlock, buildBlockForTest } from './build.js';
import {
  BlockContractError,
  formatIndex,
  forwardValues,
  inputRng,
  type ResolvedSequence,
  randomNormalArray,
  resolveSequence,
  sci,
} from './shared.js';

export interface GradientCheckOptions {
  /** The block's width. Required for a bare Mixer; for a definition default 8. */
  readonly dModel?: number;
  /** Default 2. */
  readonly batch?: number;
  /** Default 6. */
  readonly seqLen?: number;
  /** Seeds the inputs and R (and the parameters, when a definition is built here). Default 0. */
  readonly seed?: number;
  /** The raw block config, when the target is a BlockDefinition. Default `{}`. */
  readonly config?: unknown;
  /**
   * For a bare Mixer: the parameters to check. Default: every trainable tf.Variable the loss
   * reaches, named by its tfjs name.
   */
  readonly parameters?: readonly (NamedParameter | tf.Variable)[];
  /** Coordinates checked per parameter (half the largest |analytic|, half at random). Default 20. */
  readonly samplesPerParameter?: number;
  /** Central-difference step: p ± ε. Default 1e-2. */
  readonly epsilon?: number;
  /** Max relative error (see README). Default 2e-2. */
  readonly tolerance?: number;
  /**
   * The noise floor of a loss difference, as a multiple of 2⁻²⁴·Σ|y ⊙ R| (float32 rounding of
   * the loss). Default 256.
   */
  readonly noiseFloor?: number;
  /**
   * Fail a tensor whose gradient stays below the noise floor even at 10ε (status
   * `below-noise`: finite differences cannot confirm it). Default false: reported, not failed.
   */
  readonly requireResolved?: boolean;
  /** Also check ∂loss/∂x. Default true. */
  readonly checkInput?: boolean;
  /**
   * Parameters allowed to receive no gradient or one below the noise floor (e.g. behind a
   * zero-initialised projection). Exact names or suffixes after a dot: `out_proj.weight`.
   */
  readonly allowZeroGradient?: readonly string[];
}

export interface GradientCoordinate {
  /** e.g. `[3, 1]`. */
  readonly index: string;
  readonly analytic: number;
  readonly numeric: number;
  readonly error: number;
}

/**
 * `ok`; `mismatch` (error above tolerance); `no-gradient` (no gradient reaches it, yet the loss
 * depends on it: a broken backward pass); `unused` (no gradient and the loss does not depend on
 * it); `below-noise` (a gradient too small for finite differences to confirm).
 */
export type GradientStatus = 'ok' | 'mismatch' | 'no-gradient' | 'unused' | 'below-noise';

export interface GradientEntry {
  /** The parameter's name (`mixer.in_proj.weight`), or `x` for the input. */
  readonly name: string;
  readonly shape: readonly number[];
  /** The finite-difference step used (ε, or 10ε for a gradient below the noise floor at ε). */
  readonly epsilon: number;
  /** Coordinates compared. */
  readonly checked: number;
  /** The largest relative error, over the coordinates and the random direction. */
  readonly maxError: number;
  /** The coordinate with the largest error. */
  readonly worst: GradientCoordinate | null;
  /** Relative error of the directional derivative along a random dense direction. */
  readonly directionalError: number;
  /** max |analytic gradient| over the whole tensor (0 when none reached it). */
  readonly maxAbsGradient: number;
  readonly status: GradientStatus;
  /** True when the status does not fail the check (ok, or allowed to be zero). */
  readonly ok: boolean;
}

export interface GradientCheckResult {
  readonly ok: boolean;
  readonly parameters: readonly GradientEntry[];
  /** ∂loss/∂x, or null when `checkInput` is false. */
  readonly input: GradientEntry | null;
  /** Largest relative error over everything checked. */
  readonly maxError: number;
  readonly tolerance: number;
  /** The loss-difference floor used in the error's denominator. */
  readonly floor: number;
  /** Every parameter holds exactly its original values again. */
  readonly restored: boolean;
  readonly message: string;
}

/** What `checkGradients` accepts: a definition (built here and disposed), a built block, or a mixer. */
export type GradientTarget<Config = unknown> = BlockDefinition<Config> | BuiltBlock<Config> | Mixer;

interface Subject {
  readonly name: string;
  readonly variable: tf.Variable;
}

/**
 * Finite-difference gradient check of the scalar loss Σ forward(x) ⊙ R, R a fixed random tensor.
 * Analytic gradients come from `tf.variableGrads` (parameters) and `tf.grad` (x); numeric ones
 * from central differences, the loss summed in float64 on the host. Parameters are perturbed
 * through `variable.assign` and restored bit for bit.
 */
export async function checkGradients<Config>(
  target: GradientTarget<Config>,
  options: GradientCheckOptions = {},
): Promise<GradientCheckResult> {
  if (isDefinition(target)) {
    const built = buildBlockForTest(target, options.config ?? {}, {
      dModel: options.dModel ?? 8,
      seed: options.seed ?? 0,
    });
    try {
      return await checkBuilt(built, options);
    } finally {
      built.dispose();
    }
  }
  if (isBuilt(target)) return checkBuilt(target, options);
  if (options.dModel === undefined) throw new BlockContractError('checkGradients on a bare Mixer needs options.dModel');
  const shape = sequenceOf(options, options.dModel);
  const subjects =
    options.parameters === undefined
      ? discoverParameters(target, shape)
      : options.parameters.map((entry) =>
          entry instanceof tf.Variable
            ? { name: entry.name, variable: entry }
            : { name: entry.name, variable: entry.variable },
        );
  return runCheck(target, subjects, shape, options);
}

function checkBuilt(built: BuiltBlock<unknown>, options: GradientCheckOptions): Promise<GradientCheckResult> {
  const subjects = built.store.list().map((entry) => ({ name: entry.name, variable: entry.variable }));
  return runCheck(built.mixer, subjects, sequenceOf(options, built.dModel), options);
}

function sequenceOf(options: GradientCheckOptions, dModel: number): ResolvedSequence {
  return resolveSequence({ ...options, dModel }, { batch: 2, seqLen: 6 });
}

function isDefinition(target: GradientTarget<unknown>): target is BlockDefinition<unknown> {
  return 'schema' in target && 'create' in target;
}

function isBuilt(target: GradientTarget<unknown>): target is BuiltBlock<unknown> {
  return 'mixer' in target && 'store' in target;
}

/** Every trainable variable that the loss of `mixer` reaches. */
function discoverParameters(mixer: Mixer, shape: ResolvedSequence): Subject[] {
  const registered = tf.engine().registeredVariables;
  const all = Object.values(registered).filter((variable) => variable.trainable);
  if (all.length === 0) return [];
  const x = tf.ones([shape.batch, shape.seqLen, shape.dModel]) as tf.Tensor3D;
  try {
    const { value, grads } = tf.variableGrads(() => tf.sum(mixer.forward(x)) as tf.Scalar, all);
    value.dispose();
    const found = Object.keys(grads).map((name) => ({ name, variable: registered[name] as tf.Variable }));
    tf.dispose(grads);
    return found;
  } catch (error) {
    if (error instanceof Error && /Cannot find a connection/.test(error.message)) return [];
    throw error;
  } finally {
    x.dispose();
  }
}

async function runCheck(
  mixer: Mixer,
  subjects: readonly Subject[],
  shape: ResolvedSequence,
  options: GradientCheckOptions,
): Promise<GradientCheckResult> {
  const { batch, seqLen, dModel } = shape;
  const samples = options.samplesPerParameter ?? 20;
  const epsilon = options.epsilon ?? 1e-2;
  const tolerance = options.tolerance ?? 2e-2;
  const allowZero = options.allowZeroGradient ?? [];
  const requireResolved = options.requireResolved ?? false;
  const rng = inputRng(shape.seed, 'gradients');
  const size = batch * seqLen * dModel;
  const xValues = randomNormalArray(rng, size);
  const rValues = randomNormalArray(rng, size);

  const lossAt = async (input: Float32Array): Promise<number> => dot(await forwardValues(mixer, input, shape), rValues);
  const baseOut = await forwardValues(mixer, xValues, shape);
  let lossScale = 0;
  for (let i = 0; i < size; i++) lossScale += Math.abs((baseOut[i] as number) * (rValues[i] as number));
  const floor = (options.noiseFloor ?? 256) * 2 ** -24 * Math.max(lossScale, 1e-30);

  const analytic = await analyticGradients(mixer, subjects, xValues, rValues, shape, options.checkInput ?? true);
  const originals = await Promise.all(subjects.map(async ({ variable }) => Float32Array.from(await variable.data())));

  const parameters: GradientEntry[] = [];
  try {
    for (const [k, subject] of subjects.entries()) {
      const original = originals[k] as Float32Array;
      const variable = subject.variable;
      const entry = await checkTensor({
        name: subject.name,
        shape: variable.shape,
        original,
        gradient: analytic.parameters[k] ?? null,
        lossWith: async (values) => {
          assignValues(variable, values);
          return lossAt(xValues);
        },
        samples,
        epsilon,
        tolerance,
        floor,
        rng,
        allowedZero: allowZero.some((allowed) => subject.name === allowed || subject.name.endsWith(`.${allowed}`)),
        requireResolved,
      });
      assignValues(variable, original);
      parameters.push(entry);
    }
  } finally {
    for (const [k, subject] of subjects.entries()) assignValues(subject.variable, originals[k] as Float32Array);
  }
  let restored = true;
  for (const [k, subject] of subjects.entries()) {
    const now = await subject.variable.data();
    const original = originals[k] as Float32Array;
    if (!original.every((value, i) => Object.is(value, now[i]))) restored = false;
  }

  const input =
    options.checkInput === false
      ? null
      : await checkTensor({
          name: 'x',
          shape: [batch, seqLen, dModel],
          original: xValues,
          gradient: analytic.input,
          lossWith: lossAt,
          samples,
          epsilon,
          tolerance,
          floor,
          rng,
          allowedZero: false,
          requireResolved,
        });

  const entries = input === null ? parameters : [...parameters, input];
  const ok = restored && entries.every((entry) => entry.ok);
  const maxError = Math.max(0, ...entries.map((entry) => entry.maxError));
  const header =
    `gradients ${ok ? 'match' : 'DO NOT MATCH'} finite differences (loss Σ forward(x) ⊙ R, x [${batch}, ${seqLen}, ` +
    `${dModel}], ${samples} coordinates per tensor, ε ${sci(epsilon)}, tolerance ${sci(tolerance)}, loss floor ${sci(floor)}):`;
  const lines = [header, ...entries.map(describeEntry)];
  if (!restored) lines.push('  PROBLEM: a parameter was not restored to its original values');
  if (subjects.length === 0) lines.push('  (no parameters)');
  return { ok, parameters, input, maxError, tolerance, floor, restored, message: lines.join('\n') };
}

interface AnalyticGradients {
  /** One per subject, null where no gradient reached the parameter. */
  readonly parameters: (Float32Array | null)[];
  readonly input: Float32Array | null;
}

async function analyticGradients(
  mixer: Mixer,
  subjects: readonly Subject[],
  xValues: Float32Array,
  rValues: Float32Array,
  shape: ResolvedSequence,
  withInput: boolean,
): Promise<AnalyticGradients> {
  const dims: [number, number, number] = [shape.batch, shape.seqLen, shape.dModel];
  const x = tf.tensor3d(xValues.slice(), dims, 'float32');
  const r = tf.tensor3d(rValues.slice(), dims, 'float32');
  const loss = (input: tf.Tensor3D) => tf.sum(tf.mul(mixer.forward(input), r)) as tf.Scalar;
  try {
    const parameters: (Float32Array | null)[] = subjects.map(() => null);
    if (subjects.length > 0) {
      let result: { value: tf.Scalar; grads: tf.NamedTensorMap } | undefined;
      try {
        result = tf.variableGrads(
          () => loss(x),
          subjects.map((subject) => subject.variable),
        );
      } catch (error) {
        // variableGrads throws when no parameter at all is connected to the loss.
        if (!(error instanceof Error && /Cannot find a connection/.test(error.message))) throw error;
      }
      if (result !== undefined) {
        result.value.dispose();
        for (const [k, subject] of subjects.entries()) {
          const grad = result.grads[subject.variable.name];
          if (grad != null) parameters[k] = Float32Array.from(await grad.data());
        }
        tf.dispose(result.grads);
      }
    }
    let input: Float32Array | null = null;
    if (withInput) {
      try {
        const grad = tf.grad((input: tf.Tensor) => loss(input as tf.Tensor3D))(x);
        input = Float32Array.from(await grad.data());
        grad.dispose();
      } catch (error) {
        // tf.grad throws when no path leads from x to the loss.
        if (!(error instanceof Error && /Cannot compute gradient/.test(error.message))) throw error;
      }
    }
    return { parameters, input };
  } finally {
    x.dispose();
    r.dispose();
  }
}

interface TensorCheck {
  readonly name: string;
  readonly shape: readonly number[];
  readonly original: Float32Array;
  readonly gradient: Float32Array | null;
  /** The loss with the tensor set to `values`. */
  readonly lossWith: (values: Float32Array) => Promise<number>;
  readonly samples: number;
  readonly epsilon: number;
  readonly tolerance: number;
  readonly floor: number;
  readonly rng: SeededRandom;
  readonly allowedZero: boolean;
  readonly requireResolved: boolean;
}

/**
 * Compares, in units of loss differences, g·(p⁺ − p⁻) with L(p⁺) − L(p⁻) (p± = fround(p ± ε),
 * so the exact step is used) at sampled coordinates and along one random dense direction.
 */
async function checkTensor(check: TensorCheck): Promise<GradientEntry> {
  let entry = await checkTensorAt(check, check.epsilon);
  // A gradient too small to resolve at ε gets one more try with a step ten times larger
  // (truncation error grows as ε², rounding noise shrinks as 1/ε).
  if (entry.status === 'below-noise') entry = await checkTensorAt(check, check.epsilon * 10);
  return entry;
}

async function checkTensorAt(check: TensorCheck, epsilon: number): Promise<GradientEntry> {
  const { original, floor } = check;
  const reached = check.gradient !== null;
  const gradient = check.gradient ?? new Float32Array(original.length);
  const error = (a: number, n: number) => {
    const e = Math.abs(a - n) / Math.max(Math.abs(a) + Math.abs(n), floor);
    return Number.isNaN(e) ? Number.POSITIVE_INFINITY : e;
  };

  // One random dense direction: catches a gradient that is wrong in many small coordinates
  // and, where no gradient arrived, tells an unused parameter from a broken backward pass.
  // Unit length, so the step along it is ε in norm whatever the tensor's size: a per-coordinate
  // ε over thousands of coordinates would be a large, nonlinear move.
  const direction = randomNormalArray(check.rng, original.length);
  const norm = Math.hypot(...direction) || 1;
  for (let i = 0; i < direction.length; i++) direction[i] = (direction[i] as number) / norm;
  const plus = original.map((value, i) => Math.fround(value + epsilon * (direction[i] as number)));
  const minus = original.map((value, i) => Math.fround(value - epsilon * (direction[i] as number)));
  const numericDirectional = (await check.lossWith(plus)) - (await check.lossWith(minus));
  let analyticDirectional = 0;
  for (let i = 0; i < original.length; i++) {
    analyticDirectional += (gradient[i] as number) * ((plus[i] as number) - (minus[i] as number));
  }
  const directionalError = error(analyticDirectional, numericDirectional);
  let maxLossDiff = Math.max(Math.abs(analyticDirectional), Math.abs(numericDirectional));

  let maxAbsGradient = 0;
  for (const value of gradient) maxAbsGradient = Math.max(maxAbsGradient, Math.abs(value));

  let worst: GradientCoordinate | null = null;
  let checked = 0;
  const work = original.slice();
  for (const index of chooseCoordinates(gradient, check.samples, check.rng)) {
    const value = original[index] as number;
    const up = Math.fround(value + epsilon);
    const down = Math.fround(value - epsilon);
    work[index] = up;
    const lossUp = await check.lossWith(work);
    work[index] = down;
    const lossDown = await check.lossWith(work);
    work[index] = value;
    const step = up - down;
    const a = (gradient[index] as number) * step;
    const n = lossUp - lossDown;
    maxLossDiff = Math.max(maxLossDiff, Math.abs(a), Math.abs(n));
    const e = error(a, n);
    checked++;
    if (worst === null || e > worst.error) {
      worst = { index: formatIndex(index, check.shape), analytic: a / step, numeric: n / step, error: e };
    }
  }

  const maxError = Math.max(directionalError, worst?.error ?? 0);
  let status: GradientStatus;
  if (!reached) status = maxLossDiff < floor ? 'unused' : 'no-gradient';
  else if (maxError > check.tolerance) status = 'mismatch';
  else if (maxLossDiff < floor) status = 'below-noise';
  else status = 'ok';
  const ok =
    status === 'ok' ||
    (status === 'below-noise' && !check.requireResolved) ||
    (check.allowedZero && (status === 'unused' || status === 'below-noise'));
  return {
    name: check.name,
    shape: check.shape,
    epsilon,
    checked,
    maxError,
    worst,
    directionalError,
    maxAbsGradient,
    status,
    ok,
  };
}

/** Half the coordinates with the largest |gradient|, the rest uniformly at random; all if few. */
function chooseCoordinates(gradient: Float32Array, samples: number, rng: SeededRandom): number[] {
  const size = gradient.length;
  if (size <= samples) return Array.from({ length: size }, (_, i) => i);
  const byMagnitude = Array.from({ length: size }, (_, i) => i).sort(
    (a, b) => Math.abs(gradient[b] as number) - Math.abs(gradient[a] as number),
  );
  const chosen = new Set(byMagnitude.slice(0, Math.ceil(samples / 2)));
  while (chosen.size < samples) chosen.add(rng.int(size));
  return [...chosen];
}

function assignValues(variable: tf.Variable, values: Float32Array): void {
  // tf.tensor keeps a Float32Array it is given on some backends: hand it a private copy.
  const tensor = tf.tensor(values.slice(), variable.shape, 'float32');
  variable.assign(tensor);
  tensor.dispose();
}

function dot(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i] as number) * (b[i] as number);
  return sum;
}

function describeEntry(entry: GradientEntry): string {
  const head = `  ${entry.name} [${entry.shape}]: `;
  const worst = entry.worst;
  const at = worst
    ? `; worst at ${worst.index}: analytic ${worst.analytic.toPrecision(6)} vs numeric ${worst.numeric.toPrecision(6)}`
    : '';
  const errors = `max error ${sci(entry.maxError)} over ${entry.checked} coordinates and a random direction at ε ${sci(entry.epsilon)} (directional ${sci(entry.directionalError)})${at}`;
  switch (entry.status) {
    case 'no-gradient':
      return `${head}NO GRADIENT reaches it, but finite differences show the loss depends on it (broken backward pass?)`;
    case 'unused':
      return entry.ok
        ? `${head}no gradient, and the loss does not depend on it (allowed)`
        : `${head}UNUSED: no gradient, and the loss does not depend on it (list it in allowZeroGradient if intended)`;
    case 'below-noise':
      return entry.ok
        ? `${head}not resolved: gradient below the finite-difference noise floor even at ε ${sci(entry.epsilon)}, max |g| ${sci(entry.maxAbsGradient)} (${errors})`
        : `${head}VACUOUS: gradient below the finite-difference noise floor even at ε ${sci(entry.epsilon)}, max |g| ${sci(entry.maxAbsGradient)} (requireResolved is set)`;
    case 'mismatch':
      return `${head}MISMATCH: ${errors}`;
    default:
      return `${head}${errors}`;
  }
}

/** `checkGradients`, throwing its message on failure (for `it(...)`). */
export async function expectGradientsMatch<Config>(
  target: GradientTarget<Config>,
  options: GradientCheckOptions = {},
): Promise<GradientCheckResult> {
  const result = await checkGradients(target, options);
  if (!result.ok) throw new BlockContractError(result.message);
  return result;
}
