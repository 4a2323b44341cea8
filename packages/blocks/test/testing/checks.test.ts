import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BlockContractError,
  blockContractCases,
  buildBlockForTest,
  checkCausality,
  checkGradients,
  checkNoLeak,
  checkStateSize,
  checkStepMatchesForward,
  expectCausal,
  expectGradientsMatch,
  expectNoLeak,
  expectStepMatchesForward,
} from '../../src/testing/index.js';
import { type ToyBug, toyBlock } from './toy-mixers.js';

const D = 8;
const shape = { dModel: D, batch: 2, seqLen: 8 };

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

/** Builds a toy mixer, runs `body` on it, and frees its parameters. */
async function withToy<T>(bug: ToyBug, body: (mixer: ReturnType<typeof buildBlockForTest>['mixer']) => Promise<T>) {
  const block = buildBlockForTest(toyBlock(bug), {}, { dModel: D, seed: 1 });
  try {
    return await body(block.mixer);
  } finally {
    block.dispose();
  }
}

describe('buildBlockForTest', () => {
  it('parses the raw config with the block schema, defaults included', () => {
    const defaults = buildBlockForTest(toyBlock(), {}, { dModel: D });
    const explicit = buildBlockForTest(toyBlock(), { gain: 2 }, { dModel: D });
    expect(defaults.config).toEqual({ gain: 1 });
    expect(explicit.config).toEqual({ gain: 2 });
    defaults.dispose();
    explicit.dispose();
  });

  it('rejects a config the schema rejects, naming the block and the key', () => {
    expect(() => buildBlockForTest(toyBlock(), { gain: -1 }, { dModel: D })).toThrow(BlockContractError);
    expect(() => buildBlockForTest(toyBlock(), { gian: 1 }, { dModel: D })).toThrow(/toy-cumulative-mean[\s\S]*gian/);
  });

  it('creates parameters under `mixer.` with a real BlockContext, and dispose frees them', () => {
    const before = tf.memory().numTensors;
    const block = buildBlockForTest(toyBlock(), {}, { dModel: D, seed: 3 });
    expect(block.store.list().map((entry) => entry.name)).toEqual(['mixer.weight']);
    expect(block.context.dModel).toBe(D);
    expect(block.context.backend.name).toBe('cpu');
    expect(block.context.backend.hasKernel('Cumsum')).toBe(true);
    block.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('is deterministic in the seed', async () => {
    const values = async (seed: number) => {
      const block = buildBlockForTest(toyBlock(), {}, { dModel: D, seed });
      const data = Array.from(await block.store.get('mixer.weight')!.variable.data());
      block.dispose();
      return data;
    };
    expect(await values(5)).toEqual(await values(5));
    expect(await values(5)).not.toEqual(await values(6));
  });
});

describe('checkCausality', () => {
  it('passes the causal mixer: the past is bit-identical and the future moves', async () => {
    const result = await withToy('none', (mixer) => checkCausality(mixer, shape));
    expect(result.ok).toBe(true);
    expect(result.maxPastDiff).toBe(0);
    expect(result.futureChanged).toBe(true);
    expect(result.details.map((probe) => probe.cut)).toEqual([1, 4, 7]);
    await withToy('none', (mixer) => expectCausal(mixer, shape));
  });

  it('flags a mixer that looks one token ahead, at the last cut', async () => {
    const result = await withToy('look-ahead', (mixer) => checkCausality(mixer, shape));
    expect(result.ok).toBe(false);
    expect(result.maxPastDiff).toBeGreaterThan(1e-3);
    const last = result.details.find((probe) => probe.cut === 7);
    expect(last?.ok).toBe(false);
    expect(last?.worstPast).toMatch(/t=6/);
    expect(result.message).toMatch(/NOT CAUSAL/);
    await expect(withToy('look-ahead', (mixer) => expectCausal(mixer, shape))).rejects.toThrow(/NOT CAUSAL/);
  });

  it('flags a mixer that normalises over the whole sequence', async () => {
    const result = await withToy('global-norm', (mixer) => checkCausality(mixer, shape));
    expect(result.ok).toBe(false);
    expect(result.details.every((probe) => probe.maxPastDiff > 0)).toBe(true);
  });

  it('reports a vacuous check when no output depends on the input', async () => {
    const result = await withToy('ignores-input', (mixer) => checkCausality(mixer, shape));
    expect(result.ok).toBe(false);
    expect(result.maxPastDiff).toBe(0);
    expect(result.futureChanged).toBe(false);
    expect(result.message).toMatch(/VACUOUS/);
  });

  it('takes explicit cuts and rejects impossible ones', async () => {
    const result = await withToy('none', (mixer) => checkCausality(mixer, { ...shape, cuts: [0, 2] }));
    expect(result.details.map((probe) => probe.cut)).toEqual([0, 2]);
    expect(result.ok).toBe(true);
    await expect(withToy('none', (mixer) => checkCausality(mixer, { ...shape, cuts: [8] }))).rejects.toThrow(
      BlockContractError,
    );
  });

  it('does not leak tensors itself', async () => {
    await withToy('none', async (mixer) => {
      const before = tf.memory().numTensors;
      await checkCausality(mixer, shape);
      expect(tf.memory().numTensors).toBe(before);
    });
  });
});

describe('checkStepMatchesForward', () => {
  it('passes the mixer whose step reproduces forward, with no leaks', async () => {
    const result = await withToy('none', (mixer) => checkStepMatchesForward(mixer, shape));
    expect(result.ok).toBe(true);
    expect(result.maxAbsDiff).toBeLessThan(1e-6);
    expect(result.leakedTensors).toBe(0);
    expect(result.problems).toEqual([]);
    expect(result.maxDiffPerPosition).toHaveLength(8);
    await withToy('none', (mixer) => expectStepMatchesForward(mixer, shape));
  });

  it('flags a step that drifts slowly from forward, growing along the sequence', async () => {
    const result = await withToy('step-drift', (mixer) => checkStepMatchesForward(mixer, { ...shape, seqLen: 16 }));
    expect(result.ok).toBe(false);
    expect(result.maxAbsDiff).toBeGreaterThan(1e-4);
    expect(result.maxAbsDiff).toBeLessThan(1e-1);
    const perPosition = result.maxDiffPerPosition;
    expect(perPosition[0]).toBe(0);
    expect(perPosition[15] as number).toBeGreaterThan(perPosition[2] as number);
    expect(result.message).toMatch(/DOES NOT MATCH/);
    await expect(withToy('step-drift', (mixer) => expectStepMatchesForward(mixer, shape))).rejects.toThrow(
      /DOES NOT MATCH/,
    );
  });

  it('flags a mixer whose forward looks ahead (step cannot)', async () => {
    const result = await withToy('look-ahead', (mixer) => checkStepMatchesForward(mixer, shape));
    expect(result.ok).toBe(false);
  });

  it('counts tensors a step leaks', async () => {
    const result = await withToy('step-leak', (mixer) => checkStepMatchesForward(mixer, shape));
    expect(result.ok).toBe(false);
    expect(result.maxAbsDiff).toBeLessThan(1e-6);
    expect(result.leakedTensors).toBe(8);
    expect(result.message).toMatch(/8 tensor\(s\) leaked/);
  });

  it('flags a step that disposes the state it was given', async () => {
    const result = await withToy('step-disposes-state', (mixer) => checkStepMatchesForward(mixer, shape));
    expect(result.ok).toBe(false);
    expect(result.problems.join('\n')).toMatch(/disposed tensors of the state passed in/);
  });

  it("flags a step that keeps the caller's x itself in its state", async () => {
    const result = await withToy('step-stores-input', (mixer) => checkStepMatchesForward(mixer, shape));
    expect(result.ok).toBe(false);
    expect(result.maxAbsDiff).toBeLessThan(1e-6);
    expect(result.leakedTensors).toBe(0);
    expect(result.problems.join('\n')).toMatch(/input x or its output y/);
  });

  it('flags a step that hands tensors of the old state on to the new one', async () => {
    const result = await withToy('step-shares-state', (mixer) => checkStepMatchesForward(mixer, shape));
    expect(result.ok).toBe(false);
    expect(result.leakedTensors).toBe(0);
    expect(result.problems.join('\n')).toMatch(/tensors of its input state/);
  });
});

describe('checkGradients', () => {
  const options = { dModel: D, seed: 2 };

  it('passes the correct mixer, built from its definition, on parameters and input', async () => {
    const before = tf.memory().numTensors;
    const result = await checkGradients(toyBlock(), options);
    expect(result.ok).toBe(true);
    expect(result.restored).toBe(true);
    expect(result.parameters.map((entry) => [entry.name, entry.status])).toEqual([['mixer.weight', 'ok']]);
    expect(result.input?.status).toBe('ok');
    expect(result.maxError).toBeLessThan(2e-3);
    expect(tf.memory().numTensors).toBe(before);
    await expectGradientsMatch(toyBlock(), { ...options, config: { gain: 3 } });
  });

  it('restores every parameter bit for bit', async () => {
    const block = buildBlockForTest(toyBlock(), {}, { dModel: D, seed: 4 });
    const weight = block.store.get('mixer.weight')!.variable;
    const before = Array.from(await weight.data());
    const result = await checkGradients(block, { seed: 4 });
    expect(result.ok).toBe(true);
    expect(Array.from(await weight.data())).toEqual(before);
    block.dispose();
  });

  it('finds the parameters of a bare Mixer by itself', async () => {
    await withToy('none', async (mixer) => {
      const result = await checkGradients(mixer, options);
      expect(result.ok).toBe(true);
      expect(result.parameters).toHaveLength(1);
      expect(result.parameters[0]?.shape).toEqual([D, D]);
    });
  });

  it('flags a tanh backward pass that is subtly wrong', async () => {
    const result = await checkGradients(toyBlock('wrong-tanh-grad'), options);
    expect(result.ok).toBe(false);
    expect(result.parameters[0]?.status).toBe('mismatch');
    expect(result.input?.status).toBe('mismatch');
    expect(result.message).toMatch(/MISMATCH/);
    await expect(expectGradientsMatch(toyBlock('wrong-tanh-grad'), options)).rejects.toThrow(/mixer\.weight.*MISMATCH/);
  });

  it('flags a gradient with the wrong sign, with a relative error near 1', async () => {
    const result = await checkGradients(toyBlock('sign-flipped-grad'), options);
    expect(result.ok).toBe(false);
    expect(result.parameters[0]?.maxError).toBeGreaterThan(0.9);
    expect(result.input?.maxError).toBeGreaterThan(0.9);
  });

  it('flags a transposed weight gradient while the input gradient stays right', async () => {
    const result = await checkGradients(toyBlock('transposed-weight-grad'), options);
    expect(result.ok).toBe(false);
    expect(result.parameters[0]?.status).toBe('mismatch');
    expect(result.input?.status).toBe('ok');
  });

  it('flags an input gradient that misses a term while parameter gradients stay right', async () => {
    const result = await checkGradients(toyBlock('missing-input-grad-term'), options);
    expect(result.ok).toBe(false);
    expect(result.parameters[0]?.status).toBe('ok');
    expect(result.input?.status).toBe('mismatch');
  });

  it('flags a parameter the loss depends on but no gradient reaches', async () => {
    const result = await checkGradients(toyBlock('detached-weight'), options);
    expect(result.ok).toBe(false);
    expect(result.parameters[0]?.status).toBe('no-gradient');
    expect(result.message).toMatch(/NO GRADIENT/);
  });

  it('flags an unused parameter unless it is allowed', async () => {
    const result = await checkGradients(toyBlock('unused-parameter'), options);
    expect(result.ok).toBe(false);
    expect(result.parameters.map((entry) => entry.status)).toEqual(['ok', 'unused']);
    const allowed = await checkGradients(toyBlock('unused-parameter'), { ...options, allowZeroGradient: ['bias'] });
    expect(allowed.ok).toBe(true);
  });

  it('reports a gradient too small for finite differences, and fails it only when asked to', async () => {
    const loose = await checkGradients(toyBlock('faint-bias'), options);
    expect(loose.parameters.map((entry) => entry.status)).toEqual(['ok', 'below-noise']);
    expect(loose.parameters[1]?.epsilon).toBeCloseTo(0.1); // retried with 10ε
    expect(loose.ok).toBe(true);
    expect(loose.message).toMatch(/mixer\.bias .*not resolved/);
    const strict = await checkGradients(toyBlock('faint-bias'), { ...options, requireResolved: true });
    expect(strict.ok).toBe(false);
    expect(strict.message).toMatch(/VACUOUS/);
    const allowed = await checkGradients(toyBlock('faint-bias'), {
      ...options,
      requireResolved: true,
      allowZeroGradient: ['bias'],
    });
    expect(allowed.ok).toBe(true);
  });

  it('judges by relative error, so the scale of the output does not matter', async () => {
    for (const gain of [1e-6, 1e6]) {
      const result = await checkGradients(toyBlock(), { ...options, config: { gain } });
      expect(result.ok).toBe(true);
      expect(result.parameters[0]?.status).toBe('ok');
      const wrong = await checkGradients(toyBlock('wrong-tanh-grad'), { ...options, config: { gain } });
      expect(wrong.ok).toBe(false);
    }
  });
});

describe('checkNoLeak', () => {
  it('passes a function that returns what it allocates, and allows a cache built on first use', async () => {
    let cache: tf.Tensor | undefined;
    const result = await checkNoLeak(() => {
      cache ??= tf.ones([3]);
      return tf.add(cache, 1);
    });
    expect(result).toMatchObject({ ok: true, leaked: 0, firstRunDelta: 1 });
    cache?.dispose();
  });

  it('flags a forward that keeps a tensor per call', async () => {
    await withToy('forward-leak', async (mixer) => {
      const x = tf.zeros([2, 4, D]) as tf.Tensor3D;
      const result = await checkNoLeak(() => mixer.forward(x), 'forward');
      expect(result.ok).toBe(false);
      expect(result.leaked).toBe(1);
      expect(result.message).toMatch(/forward leaks 1 tensor/);
      await expect(expectNoLeak(() => mixer.forward(x), 'forward')).rejects.toThrow(BlockContractError);
      x.dispose();
    });
  });

  it('flags a function that disposes tensors it does not own', async () => {
    const owned = [tf.ones([1]), tf.ones([1])];
    const result = await checkNoLeak(() => owned.pop()?.dispose());
    expect(result.ok).toBe(false);
    expect(result.leaked).toBe(-1);
  });

  it('awaits async functions and disposes what they resolve to', async () => {
    const result = await checkNoLeak(async () => ({ a: tf.ones([2]), b: [tf.zeros([1])] }));
    expect(result.ok).toBe(true);
  });
});

describe('checkStateSize', () => {
  it('passes a block whose stateBytes is the running sum it keeps, at every length', async () => {
    const result = await checkStateSize(toyBlock('none'), {}, { dModel: D, lengths: [1, 2, 5] });
    expect(result.ok).toBe(true);
    expect(result.measurements).toEqual([1, 2, 5].map((length) => ({ length, declared: 4 * D, actual: 4 * D })));
  });

  it('flags a declaration that undercounts, with both figures', async () => {
    const result = await checkStateSize(toyBlock('undercounted-state'), {}, { dModel: D, lengths: [1, 4] });
    expect(result.ok).toBe(false);
    expect(result.message).toContain(`after 1 token(s) declares ${2 * D}, holds ${4 * D}`);
  });

  it('flags a state that grows while the declaration says it does not', async () => {
    const growing = { ...toyBlock('none'), stateBytes: () => ({ bytes: 4 * D, growsWithLength: true }) };
    const result = await checkStateSize(growing, {}, { dModel: D, lengths: [1, 3] });
    expect(result.ok).toBe(false);
    expect(result.message).toMatch(/growsWithLength: true, but the state kept one size/);
  });

  it('does not leak tensors itself', async () => {
    const before = tf.memory().numTensors;
    await checkStateSize(toyBlock('none'), {}, { dModel: D });
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('blockContractCases (what runBlockContract registers)', () => {
  const options = { dModel: D, seqLen: 8, gradients: { dModel: 4 } } as const;
  const failing = async (bug: ToyBug) => {
    const failed: string[] = [];
    for (const contractCase of blockContractCases(toyBlock(bug), {}, options)) {
      try {
        await contractCase.run();
      } catch (error) {
        expect(error).toBeInstanceOf(BlockContractError);
        failed.push(contractCase.name.split(' ')[0] as string);
      }
    }
    return failed;
  };

  it('all pass for the correct mixer', async () => {
    expect(await failing('none')).toEqual([]);
  });

  it.each([
    ['unseeded-init', ['builds']],
    ['look-ahead', ['forward', 'step']],
    ['step-drift', ['step']],
    ['wrong-tanh-grad', ['gradients']],
    ['forward-leak', ['step', 'forward']], // the step check runs forward once too
    ['step-leak', ['step', 'initState']],
    ['undercounted-state', ['stateBytes']],
  ] as const)('%s fails exactly the checks it should', async (bug, expected) => {
    expect(await failing(bug)).toEqual(expected);
  });
});

describe('a real bug: tfjs 4.22 Cumsum gradient on a non-last axis', () => {
  it('is caught by the gradient check (silently wrong when L = D, a shape error otherwise)', async () => {
    const square = await checkGradients(toyBlock('tfjs-cumsum-axis-1'), { dModel: 6, seqLen: 6, seed: 2 });
    expect(square.ok).toBe(false);
    expect(square.input?.status).toBe('mismatch');
    await expect(checkGradients(toyBlock('tfjs-cumsum-axis-1'), { dModel: 8, seqLen: 6 })).rejects.toThrow(
      /gradient for op Cumsum/,
    );
  });
});
