import {
  configureWebgpuMatmul,
  MATMUL_MIN_INNER,
  MATMUL_MIN_OUTPUT_ELEMENTS,
  MATMUL_MIN_WORK,
  MATMUL_TILINGS,
  planMatmul,
  SeededRandom,
  selectBackend,
  webgpuMatmulCounts,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startWebgpuBackend } from './support/webgpu-device.js';

/**
 * Interleave's WGSL matmul (packages/core/src/backend/matmul-wgsl.ts), which replaces tfjs's
 * BatchMatMul on webgpu for large products, against the cpu backend's matMul on the llvmpipe
 * device: odd shapes that cut every tile edge, all four transpose combinations, batches and
 * broadcast batches, every tiling, gradients, determinism, and the size threshold.
 */

interface Operands {
  a: Float32Array;
  b: Float32Array;
  shapeA: number[];
  shapeB: number[];
}

function operands(shapeA: number[], shapeB: number[], seed = 5): Operands {
  const rng = new SeededRandom(seed, 'webgpu-matmul');
  const fill = (shape: number[]) => Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, () => rng.normal());
  return { a: fill(shapeA), b: fill(shapeB), shapeA, shapeB };
}

/** Runs `compute` on `backend` with fresh tensors of the operands and returns its values. */
async function valuesOn(
  backend: 'cpu' | 'webgpu',
  { a, b, shapeA, shapeB }: Operands,
  compute: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor | tf.Tensor[],
): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const [ta, tb] = [tf.tensor(a, shapeA), tf.tensor(b, shapeB)];
  const results = compute(ta, tb);
  const list = Array.isArray(results) ? results : [results];
  const values = await Promise.all(list.map(async (t) => (await t.data()) as Float32Array));
  tf.dispose([ta, tb, ...list]);
  await tf.setBackend('webgpu');
  return values;
}

/** max |Δ| relative to the largest expected magnitude (at least 1). */
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

function shapesFor(m: number, k: number, n: number, transposeA: boolean, transposeB: boolean) {
  return { shapeA: transposeA ? [k, m] : [m, k], shapeB: transposeB ? [n, k] : [k, n] };
}

/** Compares the webgpu product (through our kernel, asserted) with the cpu backend's. */
async function expectProductMatchesCpu(
  shapeA: number[],
  shapeB: number[],
  transposeA: boolean,
  transposeB: boolean,
  kernel: 'interleave' | 'auto' = 'interleave',
): Promise<void> {
  const data = operands(shapeA, shapeB);
  const product = (a: tf.Tensor, b: tf.Tensor) => tf.matMul(a, b, transposeA, transposeB);
  const [expected] = await valuesOn('cpu', data, product);
  configureWebgpuMatmul({ kernel });
  const before = webgpuMatmulCounts.interleave;
  const [actual] = await valuesOn('webgpu', data, product);
  expect(webgpuMatmulCounts.interleave).toBe(before + 1);
  expect(relativeError(actual as Float32Array, expected as Float32Array)).toBeLessThan(2e-6);
}

beforeAll(async () => {
  await startWebgpuBackend();
});

afterEach(() => {
  configureWebgpuMatmul();
});

describe('WGSL matmul on webgpu = the cpu backend’s matMul', () => {
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [65, 129, 33],
    [300, 257, 513],
    [128, 64, 132],
  ];
  const flags: [boolean, boolean][] = [
    [false, false],
    [false, true],
    [true, false],
    [true, true],
  ];
  it.each(shapes.flatMap((mkn) => flags.map(([ta, tb]) => [...mkn, ta, tb] as const)))(
    'M=%i K=%i N=%i transposeA=%s transposeB=%s',
    async (m, k, n, transposeA, transposeB) => {
      const { shapeA, shapeB } = shapesFor(m, k, n, transposeA, transposeB);
      await expectProductMatchesCpu(shapeA, shapeB, transposeA, transposeB);
    },
  );

  it.each(MATMUL_TILINGS.map((t) => [t.name]))('tiling %s, on an odd and on an aligned shape', async (name) => {
    for (const [m, k, n, transposeA, transposeB] of [
      [67, 45, 131, false, true],
      [132, 36, 72, true, false],
    ] as const) {
      const { shapeA, shapeB } = shapesFor(m, k, n, transposeA, transposeB);
      const data = operands(shapeA, shapeB, m);
      const product = (a: tf.Tensor, b: tf.Tensor) => tf.matMul(a, b, transposeA, transposeB);
      const [expected] = await valuesOn('cpu', data, product);
      configureWebgpuMatmul({ kernel: 'interleave', tiling: name });
      const [actual] = await valuesOn('webgpu', data, product);
      expect(relativeError(actual as Float32Array, expected as Float32Array)).toBeLessThan(2e-6);
    }
  });

  it.each([
    ['a batch of 3', [3, 70, 40], [3, 40, 90], false, false],
    ['B broadcast over [2, 3]', [2, 3, 70, 40], [40, 90], false, false],
    ['A broadcast, transposed operands', [1, 40, 70], [4, 90, 40], true, true],
    ['batch 1 against [2, 2]', [1, 1, 33, 17], [2, 2, 17, 5], false, false],
  ] as const)('%s', async (_label, shapeA, shapeB, transposeA, transposeB) => {
    await expectProductMatchesCpu([...shapeA], [...shapeB], transposeA, transposeB);
  });

  it.each([
    ['unbatched', [40, 2000], [2000, 30], false, false],
    ['batched, transposed operands', [2, 2000, 24], [2, 36, 2000], true, true],
  ] as const)(
    'splits a long K over more workgroups and adds the parts (%s)',
    async (_label, shapeA, shapeB, tA, tB) => {
      const before = webgpuMatmulCounts.splitK;
      await expectProductMatchesCpu([...shapeA], [...shapeB], tA, tB);
      expect(webgpuMatmulCounts.splitK).toBe(before + 1);
    },
  );

  it('leaves a batch broadcast of more than one matrix ([2,3] against [3]) to tfjs, with the same result', async () => {
    const data = operands([2, 3, 8, 4], [3, 4, 6]);
    const product = (a: tf.Tensor, b: tf.Tensor) => tf.matMul(a, b);
    const [expected] = await valuesOn('cpu', data, product);
    configureWebgpuMatmul({ kernel: 'interleave' });
    const before = { ...webgpuMatmulCounts };
    const [actual] = await valuesOn('webgpu', data, product);
    expect(webgpuMatmulCounts.interleave).toBe(before.interleave);
    expect(webgpuMatmulCounts.tfjs).toBe(before.tfjs + 1);
    expect(relativeError(actual as Float32Array, expected as Float32Array)).toBeLessThan(2e-6);
  });

  it('gives the cpu backend’s gradients through tf.grads, for every transpose combination', async () => {
    for (const [transposeA, transposeB] of flags) {
      const { shapeA, shapeB } = shapesFor(37, 29, 45, transposeA, transposeB);
      // Both batched: tfjs's BatchMatMul gradient does not sum over a broadcast batch.
      const data = operands([2, ...shapeA], [2, ...shapeB], 11);
      const weights = Float32Array.from({ length: 2 * 37 * 45 }, (_, i) => Math.sin(i));
      const gradients = (a: tf.Tensor, b: tf.Tensor) =>
        tf.tidy(() =>
          tf.grads((x: tf.Tensor, y: tf.Tensor) =>
            tf
              .matMul(x, y, transposeA, transposeB)
              .mul(tf.tensor(weights, [2, 37, 45]))
              .sum(),
          )([a, b]),
        );
      const expected = await valuesOn('cpu', data, gradients);
      configureWebgpuMatmul({ kernel: 'interleave' });
      const before = webgpuMatmulCounts.interleave;
      const actual = await valuesOn('webgpu', data, gradients);
      // The forward product and both gradient products (dA and dB, BatchMatMul with transposes).
      expect(webgpuMatmulCounts.interleave).toBe(before + 3);
      for (const [index, values] of actual.entries()) {
        expect(relativeError(values, expected[index] as Float32Array)).toBeLessThan(2e-6);
      }
    }
  });

  it('is deterministic and leaves no tensor behind', async () => {
    configureWebgpuMatmul({ kernel: 'interleave' });
    const { a, b } = operands([3, 150, 97], [97, 130]);
    const ta = tf.tensor(a, [3, 150, 97]);
    const tb = tf.tensor(b, [97, 130]);
    const tensors = tf.memory().numTensors;
    const first = tf.matMul(ta, tb);
    const second = tf.matMul(ta, tb);
    const [x, y] = [await first.data(), await second.data()];
    tf.dispose([first, second]);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(Buffer.from(x.buffer).equals(Buffer.from(y.buffer))).toBe(true);
    tf.dispose([ta, tb]);
  });
});

describe('which kernel takes a product', () => {
  it('takes products from the thresholds on, and leaves smaller ones (or a short K) to tfjs', async () => {
    const side = Math.sqrt(MATMUL_MIN_OUTPUT_ELEMENTS);
    const cases: [number, number, number, 'interleave' | 'tfjs'][] = [
      [side, MATMUL_MIN_INNER, side, 'interleave'],
      [side, MATMUL_MIN_INNER, side - 1, 'tfjs'],
      [side, MATMUL_MIN_INNER - 1, side, 'tfjs'],
    ];
    for (const [m, k, n, kernel] of cases) {
      const data = operands([m, k], [k, n]);
      const [expected] = await valuesOn('cpu', data, (a, b) => tf.matMul(a, b));
      const before = { ...webgpuMatmulCounts };
      const [actual] = await valuesOn('webgpu', data, (a, b) => tf.matMul(a, b));
      expect(webgpuMatmulCounts[kernel]).toBe(before[kernel] + 1);
      expect(relativeError(actual as Float32Array, expected as Float32Array)).toBeLessThan(2e-6);
    }
  });

  it('also takes a small output over a long K, by its work (weight gradients, the gathered head’s gradient)', () => {
    const f32 = (shape: number[]) => ({ shape, dtype: 'float32' });
    // dLogits [2,048 × 8,192] · W [8,192 × 64]: 131,072 outputs, 2^30 multiply-adds.
    expect(planMatmul(f32([2048, 8192]), f32([8192, 64]), false, false, 'auto')).toMatchObject({ m: 2048, n: 64 });
    // A projection's weight gradient xᵀ·dy, 64 × 64 over Zoology's 32,768 rows (2^27), and over 4,096 rows (2^24).
    expect(planMatmul(f32([32768, 64]), f32([32768, 64]), true, false, 'auto')).toMatchObject({
      m: 64,
      n: 64,
      k: 32768,
    });
    expect(planMatmul(f32([4096, 64]), f32([4096, 64]), true, false, 'auto')).toMatchObject({ k: 4096 });
    // One row fewer is under the threshold: tfjs's kernel, made for small products.
    expect(planMatmul(f32([4095, 64]), f32([4095, 64]), true, false, 'auto')).toBeUndefined();
    expect(MATMUL_MIN_WORK).toBe(64 * 64 * 4096);
  });

  it('splits K for a small weight gradient and sums the parts to tfjs’s values', async () => {
    const [k, m, n] = [16384, 64, 48];
    const data = operands([k, m], [k, n]);
    const [expected] = await valuesOn('cpu', data, (a, b) => tf.matMul(a, b, true, false));
    const before = { ...webgpuMatmulCounts };
    const [actual] = await valuesOn('webgpu', data, (a, b) => tf.matMul(a, b, true, false));
    expect(webgpuMatmulCounts.interleave).toBe(before.interleave + 1);
    expect(webgpuMatmulCounts.splitK).toBe(before.splitK + 1);
    expect(relativeError(actual as Float32Array, expected as Float32Array)).toBeLessThan(2e-6);
  });

  it('keeps tfjs’s kernel for every product when told to (INTERLEAVE_MATMUL=tfjs)', async () => {
    configureWebgpuMatmul({ kernel: 'tfjs' });
    const before = { ...webgpuMatmulCounts };
    const [m, k, n] = [600, 80, 600];
    await valuesOn('webgpu', operands([m, k], [k, n]), (a, b) => tf.matMul(a, b));
    expect(webgpuMatmulCounts).toEqual({ ...before, tfjs: before.tfjs + 1 });
  });

  it('rejects an INTERLEAVE_MATMUL that names no tiling, in one line, before any backend starts', async () => {
    process.env.INTERLEAVE_MATMUL = '7x7';
    try {
      await expect(selectBackend('webgpu')).rejects.toThrow(/^INTERLEAVE_MATMUL=7x7: unknown matmul tiling '7x7'/);
    } finally {
      delete process.env.INTERLEAVE_MATMUL;
    }
  });

  it('names the tilings when asked for one that does not exist', () => {
    expect(() => configureWebgpuMatmul({ tiling: '7x7' })).toThrow(
      /^unknown matmul tiling '7x7' \(expected tfjs or one of \d+x\d+k\d+, /,
    );
  });
});
