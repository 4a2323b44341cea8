/**
 * The checks again on the wasm backend, which lacks some kernels (UnsortedSegmentSum, Einsum,
 * FFT, ...): the helpers themselves must use none of them.
 */
import { selectBackend } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  buildBlockForTest,
  checkCausality,
  checkGradients,
  checkNoLeak,
  checkStepMatchesForward,
  expectCausal,
  expectGradientsMatch,
  expectStepMatchesForward,
} from '../../src/testing/index.js';
import { toyBlock } from './toy-mixers.js';

const D = 8;
const shape = { dModel: D, batch: 2, seqLen: 8 };

beforeAll(async () => {
  await selectBackend('wasm', 'checks.wasm.test.ts');
});

describe('contract checks on wasm', () => {
  it('runs on the wasm backend', () => {
    expect(tf.getBackend()).toBe('wasm');
    const block = buildBlockForTest(toyBlock(), {}, { dModel: D });
    expect(block.context.backend.name).toBe('wasm');
    expect(block.context.backend.hasKernel('UnsortedSegmentSum')).toBe(false);
    block.dispose();
  });

  it('passes the correct mixer on every check, leaving no tensors behind', async () => {
    const before = tf.memory().numTensors;
    const block = buildBlockForTest(toyBlock(), { gain: 2 }, { dModel: D, seed: 1 });
    const causality = await expectCausal(block.mixer, shape);
    expect(causality.maxPastDiff).toBe(0);
    const step = await expectStepMatchesForward(block.mixer, shape);
    expect(step.maxAbsDiff).toBeLessThan(1e-5);
    expect(step.leakedTensors).toBe(0);
    const gradients = await expectGradientsMatch(block, { seed: 1 });
    expect(gradients.restored).toBe(true);
    expect(gradients.input?.status).toBe('ok');
    const x = tf.randomNormal([2, 8, D]) as tf.Tensor3D;
    expect((await checkNoLeak(() => block.mixer.forward(x))).ok).toBe(true);
    x.dispose();
    block.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('builds a definition and checks its gradients there', async () => {
    expect((await checkGradients(toyBlock(), { dModel: 4, seed: 3 })).ok).toBe(true);
  });

  it('still flags the broken mixers', async () => {
    const build = (bug: Parameters<typeof toyBlock>[0]) => buildBlockForTest(toyBlock(bug), {}, { dModel: D });
    const lookAhead = build('look-ahead');
    expect((await checkCausality(lookAhead.mixer, shape)).ok).toBe(false);
    lookAhead.dispose();
    const drift = build('step-drift');
    expect((await checkStepMatchesForward(drift.mixer, shape)).ok).toBe(false);
    drift.dispose();
    const wrong = await checkGradients(toyBlock('wrong-tanh-grad'), { dModel: D });
    expect(wrong.parameters[0]?.status).toBe('mismatch');
  });
});
