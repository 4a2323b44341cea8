import { type BackendRequest, type BlockDefinition, selectBackend } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { type BuiltBlock, buildBlockForTest } from './build.js';
import { type CausalityOptions, expectCausal } from './causality.js';
import { expectGradientsMatch, type GradientCheckOptions } from './gradients.js';
import { expectNoLeak } from './leaks.js';
import { BlockContractError, expectState, expectTensor, inputRng, randomNormalArray } from './shared.js';
import { expectStateSizeMatches, type StateSizeOptions } from './state-size.js';
import { expectStepMatchesForward, type StepCheckOptions } from './step-matches-forward.js';

type Tuning<T> = Omit<Partial<T>, 'dModel' | 'seed'>;

export interface BlockContractOptions {
  /** Width the block is built with for the causality, step and leak checks. Default 16. */
  readonly dModel?: number;
  /** Default 2. */
  readonly batch?: number;
  /** Default 12. */
  readonly seqLen?: number;
  /** Seeds parameters and inputs. Default 0. */
  readonly seed?: number;
  /**
   * Run the whole suite once per backend (`cpu`, `wasm`, ...), started with core's
   * `selectBackend`; default: only the backend current when the tests run.
   */
  readonly backends?: readonly BackendRequest[];
  /** Overrides for the causality check, or false to skip it. */
  readonly causality?: Tuning<CausalityOptions> | false;
  /** Overrides for the step check, or false to skip it. */
  readonly step?: Tuning<StepCheckOptions> | false;
  /**
   * Overrides for the gradient check, or false to skip it. It builds its own tiny block:
   * dModel 8, batch 2, seqLen 6 unless given here.
   */
  readonly gradients?: (Omit<GradientCheckOptions, 'config' | 'parameters'> & { readonly dModel?: number }) | false;
  /**
   * Overrides for the state-size check (`stateBytes` against the tensors `step` holds), or
   * false to skip it.
   */
  readonly stateSize?: Tuning<StateSizeOptions> | false;
  /** false to skip the leak checks of forward and step. */
  readonly leaks?: boolean;
  /** Per-test timeout in ms (vitest's default otherwise). */
  readonly timeout?: number;
}

/** One contract test: a name and a body that throws a readable BlockContractError on failure. */
export interface BlockContractCase {
  readonly name: string;
  run(): Promise<void>;
}

/**
 * The contract tests of one block and config, as plain async functions (on the current backend);
 * `runBlockContract` registers them with vitest.
 */
export function blockContractCases<Config>(
  definition: BlockDefinition<Config>,
  rawConfig: unknown,
  options: BlockContractOptions = {},
): BlockContractCase[] {
  const dModel = options.dModel ?? 16;
  const batch = options.batch ?? 2;
  const seqLen = options.seqLen ?? 12;
  const seed = options.seed ?? 0;
  const sequence = { dModel, batch, seqLen, seed };
  const withBlock = async (body: (block: BuiltBlock<Config>) => Promise<void>) => {
    const block = buildBlockForTest(definition, rawConfig, { dModel, seed });
    try {
      await body(block);
    } finally {
      block.dispose();
    }
  };

  const cases: BlockContractCase[] = [
    {
      name: 'builds from its config, deterministically from the seed',
      run: () => checkBuild(definition, rawConfig, sequence),
    },
  ];
  if (options.causality !== false) {
    const tuning = options.causality ?? {};
    cases.push({
      name: 'forward is causal (perturbing the future leaves the past unchanged)',
      run: () => withBlock(async (block) => void (await expectCausal(block.mixer, { ...sequence, ...tuning }))),
    });
  }
  if (options.step !== false) {
    const tuning = options.step ?? {};
    cases.push({
      name: 'step over the sequence reproduces forward, without leaking states',
      run: () =>
        withBlock(async (block) => void (await expectStepMatchesForward(block.mixer, { ...sequence, ...tuning }))),
    });
  }
  if (options.stateSize !== false) {
    const tuning = options.stateSize ?? {};
    cases.push({
      name: 'stateBytes declares the bytes per sequence its step state holds',
      run: async () => void (await expectStateSizeMatches(definition, rawConfig, { dModel, batch, seed, ...tuning })),
    });
  }
  if (options.gradients !== false) {
    const tuning = options.gradients ?? {};
    cases.push({
      name: 'gradients (parameters and input) match finite differences',
      run: async () => void (await expectGradientsMatch(definition, { seed, ...tuning, config: rawConfig })),
    });
  }
  if (options.leaks !== false) {
    cases.push({
      name: 'forward does not leak tensors',
      run: () =>
        withBlock(async (block) => {
          const values = randomNormalArray(inputRng(seed, 'leak'), batch * seqLen * dModel);
          await expectNoLeak(() => {
            const x = tf.tensor3d(values, [batch, seqLen, dModel]);
            const y = block.mixer.forward(x);
            x.dispose();
            return y;
          }, 'forward');
        }),
    });
    cases.push({
      name: 'initState and step do not leak tensors',
      run: () =>
        withBlock(async (block) => {
          const values = randomNormalArray(inputRng(seed, 'leak'), batch * dModel);
          await expectNoLeak(() => {
            const x = tf.tensor2d(values, [batch, dModel]);
            const state = block.mixer.initState(batch);
            const result = block.mixer.step(x, state);
            tf.dispose([x, state as unknown as tf.TensorContainer]);
            return result;
          }, 'initState + step');
        }),
    });
  }
  return cases;
}

/** Build, shapes of forward/initState/step, and identical parameters from the same seed. */
async function checkBuild<Config>(
  definition: BlockDefinition<Config>,
  rawConfig: unknown,
  sequence: { dModel: number; batch: number; seqLen: number; seed: number },
): Promise<void> {
  const { dModel, batch, seqLen, seed } = sequence;
  const first = buildBlockForTest(definition, rawConfig, { dModel, seed });
  const second = buildBlockForTest(definition, rawConfig, { dModel, seed });
  try {
    const a = first.store.list();
    const b = second.store.list();
    if (a.map((entry) => entry.name).join() !== b.map((entry) => entry.name).join()) {
      throw new BlockContractError('two builds with the same seed created different parameter lists');
    }
    for (const [k, entry] of a.entries()) {
      const other = b[k]?.variable as tf.Variable;
      const [left, right] = await Promise.all([entry.variable.data(), other.data()]);
      if (!left.every((value, i) => Object.is(value, right[i]))) {
        throw new BlockContractError(
          `parameter ${entry.name} differs between two builds with the same seed; draw init values from ` +
            'the initializer rng (or context.rng), never Math.random or tf.random*',
        );
      }
    }
    const values = randomNormalArray(inputRng(seed, 'build'), batch * seqLen * dModel);
    const x = tf.tensor3d(values, [batch, seqLen, dModel]);
    const y = first.mixer.forward(x);
    expectTensor(y, [batch, seqLen, dModel], 'forward(x [B, L, D])');
    const state = first.mixer.initState(batch);
    expectState(state, `initState(${batch})`);
    const token = tf.tensor2d(values.slice(0, batch * dModel), [batch, dModel]);
    const result = first.mixer.step(token, state);
    expectTensor(result.y, [batch, dModel], 'step(x [B, D]).y');
    expectState(result.state, 'step(x [B, D]).state');
    tf.dispose([x, y, token, result as unknown as tf.TensorContainer, state as unknown as tf.TensorContainer]);
  } finally {
    first.dispose();
    second.dispose();
  }
}

/**
 * Registers the block contract as vitest tests: one `describe` per backend, one `it` per check.
 * A plugin's test file needs one line: `runBlockContract(myBlock, { width: 4 });`
 */
export function runBlockContract<Config>(
  definition: BlockDefinition<Config>,
  rawConfig: unknown = {},
  options: BlockContractOptions = {},
): void {
  const backends: readonly (BackendRequest | undefined)[] = options.backends ?? [undefined];
  for (const backend of backends) {
    describe(`block contract: ${definition.name}${backend === undefined ? '' : ` on ${backend}`}`, () => {
      if (backend !== undefined) {
        let previous: string | undefined;
        beforeAll(async () => {
          previous = tf.getBackend();
          await selectBackend(backend, 'runBlockContract');
        });
        afterAll(async () => {
          if (previous !== undefined) await tf.setBackend(previous);
        });
      }
      for (const contractCase of blockContractCases(definition, rawConfig, options)) {
        it(contractCase.name, () => contractCase.run(), options.timeout);
      }
    });
  }
}
