import { type Mixer, selectBackend } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { attentionForwardVia, slidingWindowAttentionBlock } from '../src/attention.js';
import { type AttentionPath, prefersBanded } from '../src/ops/banded-attention.js';
import { buildBlockForTest, runBlockContract } from '../src/testing/index.js';
import { ATTENTION_CASES, type AttentionCase, describeAttentionCase } from './support/attention-cases.js';

// docs/design.md#attention: the O(L·w) banded form must equal the dense masked form, in value and gradient.
const D = 16;
const BATCH = 2;

let inputCount = 0;

/** The output and every gradient (input and parameters) of sum(y ⊙ R) along one path. */
function valueAndGradients(block: ReturnType<typeof build>, x: tf.Tensor3D, weights: tf.Tensor3D, path: AttentionPath) {
  const input = tf.variable(x, true, `attention_input_${inputCount++}`);
  const variables = [input, ...block.store.list().map((entry) => entry.variable)];
  const { value, grads } = tf.variableGrads(
    () => attentionForwardVia(block.mixer, input, path).mul(weights).sum() as tf.Scalar,
    variables,
  );
  const y = attentionForwardVia(block.mixer, x, path);
  const gradients = new Map<string, tf.Tensor>();
  gradients.set('x', grads[input.name] as tf.Tensor);
  for (const entry of block.store.list()) gradients.set(entry.name, grads[entry.variable.name] as tf.Tensor);
  value.dispose();
  input.dispose();
  return { y, gradients };
}

function build({ window, heads, kvHeads }: AttentionCase) {
  return buildBlockForTest(slidingWindowAttentionBlock, { window, heads, kv_heads: kvHeads }, { dModel: D, seed: 3 });
}

const maxAbs = (t: tf.Tensor) => tf.tidy(() => t.abs().max().dataSync()[0] as number);
const maxAbsDiff = (a: tf.Tensor, b: tf.Tensor) => tf.tidy(() => maxAbs(tf.sub(a, b)));

for (const backend of ['cpu', 'wasm'] as const) {
  describe(`banded attention = dense masked attention (${backend})`, () => {
    beforeAll(async () => {
      await selectBackend(backend, 'attention-banded.test.ts');
    });

    it.each(ATTENTION_CASES.map((c) => [describeAttentionCase(c), c] as const))('%s', (_name, testCase) => {
      const before = tf.memory().numTensors;
      const block = build(testCase);
      const x = tf.randomNormal([BATCH, testCase.length, D], 0, 1, 'float32', 1) as tf.Tensor3D;
      const weights = tf.randomNormal([BATCH, testCase.length, D], 0, 1, 'float32', 2) as tf.Tensor3D;
      const banded = valueAndGradients(block, x, weights, 'banded');
      const dense = valueAndGradients(block, x, weights, 'dense');

      expect(maxAbsDiff(banded.y, dense.y)).toBeLessThanOrEqual(1e-5);
      expect([...banded.gradients.keys()]).toEqual([
        'x',
        'mixer.q_proj.weight',
        'mixer.k_proj.weight',
        'mixer.v_proj.weight',
        'mixer.o_proj.weight',
      ]);
      for (const [name, gradient] of banded.gradients) {
        const reference = dense.gradients.get(name) as tf.Tensor;
        const scale = maxAbs(reference);
        if (scale === 0) {
          // With w = 1 each query sees only itself, so q and k get exactly no gradient.
          expect(testCase.window, name).toBe(1);
          expect(maxAbs(gradient), name).toBe(0);
        } else {
          expect(maxAbsDiff(gradient, reference) / scale, name).toBeLessThanOrEqual(1e-4);
        }
      }

      tf.dispose([x, weights, banded.y, dense.y, ...banded.gradients.values(), ...dense.gradients.values()]);
      block.dispose();
      expect(tf.memory().numTensors).toBe(before);
    });

    it('auto takes the banded path on long sequences and matches it exactly', () => {
      const testCase = { length: 40, window: 4, heads: 2, kvHeads: 1 };
      expect(prefersBanded(testCase.length, testCase.window)).toBe(true);
      const block = build(testCase);
      const x = tf.randomNormal([1, testCase.length, D], 0, 1, 'float32', 4) as tf.Tensor3D;
      const auto = block.mixer.forward(x);
      const banded = attentionForwardVia(block.mixer, x, 'banded');
      expect(maxAbsDiff(auto, banded)).toBe(0);
      tf.dispose([x, auto, banded]);
      block.dispose();
    });
  });
}

describe('banded attention memory is O(L·w) (wasm)', () => {
  beforeAll(async () => {
    await selectBackend('wasm', 'attention-banded.test.ts');
  });

  // tfjs counts numBytes per tensor (reshapes and identities included), so these are upper
  // bounds on real memory. Measured: banded forward 42.5 MiB, forward+backward 117.6 MiB at
  // L = 4096 (58.9 MiB at 2048); dense 712.5 MiB and 1640.6 MiB (420.3 MiB at 2048).
  async function peakBytes(length: number, body: (mixer: Mixer, x: tf.Tensor3D) => void): Promise<number> {
    const block = buildBlockForTest(slidingWindowAttentionBlock, { window: 64, heads: 2 }, { dModel: 32, seed: 0 });
    const x = tf.randomNormal([1, length, 32], 0, 1, 'float32', 5) as tf.Tensor3D;
    const before = tf.memory();
    const profile = await tf.profile(() => body(block.mixer, x));
    expect(tf.memory().numTensors).toBe(before.numTensors);
    x.dispose();
    block.dispose();
    return profile.peakBytes - before.numBytes;
  }
  const forwardOnly = (mixer: Mixer, x: tf.Tensor3D) => {
    const y = mixer.forward(x);
    expect(y.shape).toEqual(x.shape);
    y.dispose();
  };
  const forwardBackward = (mixer: Mixer, x: tf.Tensor3D) => {
    const { value, grads } = tf.variableGrads(() => mixer.forward(x).square().mean() as tf.Scalar);
    expect(Object.keys(grads)).toHaveLength(4);
    tf.dispose([value, ...Object.values(grads)]);
  };
  /** One dense score tensor [B, H, L, L] at B = 1, H = 2, in bytes; dense attention makes several. */
  const denseScores = (length: number) => 2 * length * length * 4;

  it('runs forward at L = 4096, w = 64 within a fraction of one dense score tensor', async () => {
    expect(await peakBytes(4096, forwardOnly)).toBeLessThan(denseScores(4096) / 2);
  });

  it('runs forward and backward at L = 4096 with a footprint linear in L', async () => {
    const half = await peakBytes(2048, forwardBackward);
    const full = await peakBytes(4096, forwardBackward);
    expect(full).toBeLessThan(denseScores(4096));
    // Doubling L doubles the banded footprint; the dense one would quadruple.
    expect(full / half).toBeLessThan(2.2);
  });
});

// The block contract on configs where `auto` takes the banded path for the checks' own
// shapes (seqLen 12 for causality, step and leaks; the gradient check is given seqLen 12 too).
describe('the block contract on the banded path', () => {
  it('is what auto picks for these shapes', () => {
    expect(prefersBanded(12, 2)).toBe(true);
    expect(prefersBanded(12, 1)).toBe(true);
  });
});
runBlockContract(
  slidingWindowAttentionBlock,
  { window: 2, heads: 2 },
  { backends: ['cpu', 'wasm'], seqLen: 12, gradients: { seqLen: 12 } },
);
runBlockContract(
  slidingWindowAttentionBlock,
  { window: 1, heads: 4, kv_heads: 2 },
  { backends: ['wasm'], seqLen: 12, gradients: { seqLen: 12 } },
);
