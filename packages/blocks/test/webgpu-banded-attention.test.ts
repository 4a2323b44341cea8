import { limitStorageBindingBytes, SeededRandom, throwIfWebgpuFailed } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { afterEach, describe, expect, it } from 'vitest';
import { attentionForwardVia, slidingWindowAttentionBlock } from '../src/attention.js';
import { type AttentionPath, causalAttention } from '../src/ops/banded-attention.js';
import { DENSE_ATTENTION_MAX_LENGTH } from '../src/ops/fused-attention.js';
import { buildBlockForTest, useWebgpuBackend } from '../src/testing/index.js';
import { ATTENTION_CASES, type AttentionCase, describeAttentionCase } from './support/attention-cases.js';

/**
 * The WGSL attention kernels (src/webgpu/banded-attention-wgsl.ts) on webgpu (here Dawn over
 * Mesa's llvmpipe) against the tf-op banded form (dense where w ≥ L) on the cpu backend: values
 * and gradients, of the attention core in q, k and v and of a whole block in its input and
 * parameters. webgpu reads back asynchronously only, hence `data()` throughout.
 */

useWebgpuBackend();

interface Shape extends AttentionCase {
  readonly batch: number;
  readonly headDim: number;
}

const shapes: Shape[] = [
  ...ATTENTION_CASES.map((c) => ({ ...c, batch: 2, headDim: 8 })),
  // head_dim 64 (tiles of 31 keys), several query blocks of 64 and a window across them.
  { length: 150, window: 40, heads: 2, kvHeads: 1, batch: 1, headDim: 64 },
  { length: 70, window: 70, heads: 2, kvHeads: 2, batch: 1, headDim: 64 },
  // A head size that is no multiple of 4 (zero-padded vec4 rows), and 128 (tiles of 15 rows).
  { length: 13, window: 5, heads: 4, kvHeads: 2, batch: 2, headDim: 6 },
  { length: 40, window: 17, heads: 2, kvHeads: 1, batch: 1, headDim: 128 },
  // One head, full attention (Zoology's MQAR model): heads enter and leave by reshapes, not transposes.
  { length: 20, window: 20, heads: 1, kvHeads: 1, batch: 2, headDim: 16 },
];
const describeShape = (shape: Shape) => `${describeAttentionCase(shape)} head_dim=${shape.headDim} B=${shape.batch}`;

function draw(count: number, seed: number): Float32Array {
  const rng = new SeededRandom(seed, 'webgpu-banded-attention');
  return Float32Array.from({ length: count }, () => rng.normal());
}

/** Reads back, then fails on any out-of-band GPU error (a shader that did not compile reads as zeros). */
async function read(tensors: tf.Tensor[]): Promise<Float32Array[]> {
  const arrays = await Promise.all(tensors.map(async (tensor) => (await tensor.data()) as Float32Array));
  throwIfWebgpuFailed('the attention test');
  return arrays;
}

/** max |a − b| / max(1, max |b|). */
function relativeError(actual: Float32Array, expected: Float32Array): number {
  expect(actual.length).toBe(expected.length);
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs((actual[i] as number) - (expected[i] as number)));
    scale = Math.max(scale, Math.abs(expected[i] as number));
  }
  return diff / scale;
}

/** Runs `body` on `backend`, then returns to webgpu. */
async function on<T>(backend: 'cpu' | 'webgpu', body: () => Promise<T>): Promise<T> {
  await tf.setBackend(backend);
  try {
    return await body();
  } finally {
    await tf.setBackend('webgpu');
  }
}

/** Attention core: the output and the gradients in q, k and v of Σ out ⊙ u, on the current backend. */
async function coreValueAndGradients(shape: Shape, path: AttentionPath): Promise<Float32Array[]> {
  const { batch, heads, kvHeads, length, headDim, window } = shape;
  const before = tf.memory().numTensors;
  const outputs = tf.tidy(() => {
    const queries = tf.tensor4d(draw(batch * heads * length * headDim, 1), [batch, heads, length, headDim]);
    const keys = tf.tensor4d(draw(batch * kvHeads * length * headDim, 2), [batch, kvHeads, length, headDim]);
    const values = tf.tensor4d(draw(batch * kvHeads * length * headDim, 3), [batch, kvHeads, length, headDim]);
    const weights = tf.tensor3d(draw(batch * length * heads * headDim, 4), [batch, length, heads * headDim]);
    const attend = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) =>
      causalAttention({ queries: q as tf.Tensor4D, keys: k as tf.Tensor4D, values: v as tf.Tensor4D }, window, path);
    const grads = tf.grads((q, k, v) => attend(q, k, v).mul(weights).sum())([
      queries.mul(1 / Math.sqrt(headDim)),
      keys,
      values,
    ]);
    return [attend(queries.mul(1 / Math.sqrt(headDim)), keys, values), ...grads];
  });
  const arrays = await read(outputs);
  tf.dispose(outputs);
  expect(tf.memory().numTensors, `${path} leaks`).toBe(before);
  return arrays;
}

/** A whole swa block: its output and the gradients in its input and every parameter. */
async function blockValueAndGradients(
  shape: Shape,
  path: AttentionPath,
): Promise<{ names: string[]; arrays: Float32Array[] }> {
  const { batch, heads, kvHeads, length, headDim, window } = shape;
  const dModel = heads * headDim;
  const before = tf.memory().numTensors;
  const block = buildBlockForTest(
    slidingWindowAttentionBlock,
    { window, heads, kv_heads: kvHeads },
    { dModel, seed: 3 },
  );
  const x = tf.tensor3d(draw(batch * length * dModel, 5), [batch, length, dModel]);
  const input = tf.variable(x);
  const weights = tf.tensor3d(draw(batch * length * dModel, 6), [batch, length, dModel]);
  const entries = block.store.list();
  const { value, grads } = tf.variableGrads(
    () => attentionForwardVia(block.mixer, input, path).mul(weights).sum() as tf.Scalar,
    [input, ...entries.map((entry) => entry.variable)],
  );
  const y = attentionForwardVia(block.mixer, input, path);
  const outputs = [
    y,
    grads[input.name] as tf.Tensor,
    ...entries.map((entry) => grads[entry.variable.name] as tf.Tensor),
  ];
  const arrays = await read(outputs);
  tf.dispose([value, x, input, weights, ...outputs]);
  block.dispose();
  expect(tf.memory().numTensors, `${path} block step leaks`).toBe(before);
  return { names: ['y', 'x', ...entries.map((entry) => entry.name)], arrays };
}

function expectClose(actual: Float32Array[], expected: Float32Array[], names: string[]): void {
  expect(actual).toHaveLength(expected.length);
  expected.forEach((reference, index) => {
    const name = names[index] as string;
    const result = actual[index] as Float32Array;
    expect(result.every(Number.isFinite), `${name} finite`).toBe(true);
    expect(relativeError(result, reference), name).toBeLessThan(index === 0 ? 1e-5 : 1e-4);
  });
}

function expectIdentical(first: Float32Array[], second: Float32Array[]): void {
  expect(second).toHaveLength(first.length);
  for (const [index, array] of first.entries()) {
    expect(Buffer.from((second[index] as Float32Array).buffer), `output ${index}`).toEqual(Buffer.from(array.buffer));
  }
}

describe('fused attention on webgpu = tf-op banded attention on cpu', () => {
  it.each(shapes.map((shape) => [describeShape(shape), shape] as const))(
    'attention core, values and q, k, v gradients (%s)',
    async (_name, shape) => {
      const expected = await on('cpu', () => coreValueAndGradients(shape, 'banded'));
      const fused = await coreValueAndGradients(shape, 'fused');
      expectClose(fused, expected, ['out', 'dq', 'dk', 'dv']);
      expectIdentical(fused, await coreValueAndGradients(shape, 'fused'));
    },
  );

  it.each(shapes.map((shape) => [describeShape(shape), shape] as const))(
    'whole block, output and input and parameter gradients (%s)',
    async (_name, shape) => {
      const expected = await on('cpu', () => blockValueAndGradients(shape, 'banded'));
      const fused = await blockValueAndGradients(shape, 'fused');
      expect(fused.names).toEqual(expected.names);
      expectClose(fused.arrays, expected.arrays, fused.names);
      expectIdentical(fused.arrays, (await blockValueAndGradients(shape, 'fused')).arrays);
    },
  );
});

describe('the layouts around the fused kernels', () => {
  /** The kernels a block's forward and backward run (tf.profile), on webgpu. */
  async function kernelsOfBlock(heads: number): Promise<string[]> {
    const [length, headDim, batch] = [16, 8, 2];
    const dModel = heads * headDim;
    const block = buildBlockForTest(slidingWindowAttentionBlock, { window: length, heads }, { dModel, seed: 3 });
    const input = tf.variable(tf.tensor3d(draw(batch * length * dModel, 5), [batch, length, dModel]));
    const variables = [input, ...block.store.list().map((entry) => entry.variable)];
    const info = await tf.profile(() => {
      const { value, grads } = tf.variableGrads(
        () => attentionForwardVia(block.mixer, input, 'fused').square().sum() as tf.Scalar,
        variables,
      );
      tf.dispose([value, ...Object.values(grads)]);
    });
    input.dispose();
    block.dispose();
    return info.kernelNames;
  }

  it('copies nothing between [B, L, H, d] and [B, H, L, d] for one head; several heads transpose', async () => {
    expect(await kernelsOfBlock(1)).not.toContain('Transpose');
    expect(await kernelsOfBlock(2)).toContain('Transpose');
  });
});

describe('fused attention in chunks of sequences', () => {
  afterEach(() => limitStorageBindingBytes(undefined));

  it('gives the same bits when the batch is split under a lowered binding cap', async () => {
    const shape: Shape = { length: 20, window: 6, heads: 2, kvHeads: 1, batch: 3, headDim: 8 };
    const whole = await coreValueAndGradients(shape, 'fused');
    // One sequence's queries are 2·20·8 floats (1,280 bytes): a 1,500-byte cap forces one sequence a call.
    limitStorageBindingBytes(1500);
    expectIdentical(whole, await coreValueAndGradients(shape, 'fused'));
  });
});

describe('INTERLEAVE_ATTENTION', () => {
  const shape: Shape = { length: 24, window: 4, heads: 2, kvHeads: 2, batch: 1, headDim: 8 };
  const saved = process.env.INTERLEAVE_ATTENTION;
  afterEach(() => {
    if (saved === undefined) delete process.env.INTERLEAVE_ATTENTION;
    else process.env.INTERLEAVE_ATTENTION = saved;
  });

  it('picks the fused kernels on webgpu by default and the tf-op form with ops', async () => {
    delete process.env.INTERLEAVE_ATTENTION;
    expectIdentical(await coreValueAndGradients(shape, 'auto'), await coreValueAndGradients(shape, 'fused'));
    process.env.INTERLEAVE_ATTENTION = 'ops';
    // 24² ≥ 1.5 · 24 · 8: prefersBanded takes the banded form.
    expectIdentical(await coreValueAndGradients(shape, 'auto'), await coreValueAndGradients(shape, 'banded'));
  });

  it('auto: full attention over at most 256 positions runs the dense tf-op form, longer, windowed or too large the fused kernels', async () => {
    delete process.env.INTERLEAVE_ATTENTION;
    // A window of at least L is full attention (a config's window: null reaches the kernels as L).
    const full: Shape = { length: 24, window: 24, heads: 1, kvHeads: 1, batch: 1, headDim: 8 };
    expectIdentical(await coreValueAndGradients(full, 'auto'), await coreValueAndGradients(full, 'dense'));
    const wider: Shape = { ...full, window: 1000 };
    expectIdentical(await coreValueAndGradients(wider, 'auto'), await coreValueAndGradients(wider, 'dense'));
    // Scores over half a storage binding (cap lowered here: 24·24·4 = 2,304 bytes) stay on the fused kernels.
    limitStorageBindingBytes(4096);
    try {
      expectIdentical(await coreValueAndGradients(full, 'auto'), await coreValueAndGradients(full, 'fused'));
    } finally {
      limitStorageBindingBytes(undefined);
    }
    const longFull: Shape = { ...full, length: DENSE_ATTENTION_MAX_LENGTH + 1, window: DENSE_ATTENTION_MAX_LENGTH + 1 };
    expectIdentical(await coreValueAndGradients(longFull, 'auto'), await coreValueAndGradients(longFull, 'fused'));
  });

  it('rejects other values in one line', async () => {
    process.env.INTERLEAVE_ATTENTION = 'flash';
    await expect(coreValueAndGradients(shape, 'auto')).rejects.toThrow(
      "INTERLEAVE_ATTENTION must be 'fused' or 'ops', got 'flash'",
    );
  });

  it('says where the fused kernels exist when forced on another backend', async () => {
    process.env.INTERLEAVE_ATTENTION = 'fused';
    await expect(on('cpu', () => coreValueAndGradients(shape, 'auto'))).rejects.toThrow(
      "the fused attention kernels are registered for webgpu, not for 'cpu' (use INTERLEAVE_ATTENTION=ops)",
    );
  });
});
