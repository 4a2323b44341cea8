import { limitStorageBindingBytes, SeededRandom, throwIfWebgpuFailed } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { afterEach, describe, expect, it } from 'vitest';
import { causalDepthwiseConv1d } from '../src/ops/causal-depthwise-conv.js';
import { useWebgpuBackend } from '../src/testing/index.js';

/**
 * The WGSL causal depthwise convolution (src/webgpu/causal-conv-wgsl.ts) on webgpu (Dawn over
 * Mesa's llvmpipe) against the tf-op form of ops/causal-depthwise-conv.ts on the cpu backend:
 * the output and the gradients in x, the weight and the bias.
 */

useWebgpuBackend();

interface Case {
  readonly batch: number;
  readonly length: number;
  readonly channels: number;
  readonly taps: number;
  readonly bias: boolean;
}

const cases: Case[] = [
  { batch: 2, length: 9, channels: 8, taps: 4, bias: true }, // Mamba's d_conv
  { batch: 3, length: 150, channels: 70, taps: 4, bias: true }, // 450 rows: two row blocks; channels over one workgroup
  { batch: 2, length: 2, channels: 5, taps: 4, bias: true }, // shorter than the kernel
  { batch: 1, length: 7, channels: 6, taps: 1, bias: false }, // a pointwise product, no bias
  { batch: 2, length: 11, channels: 3, taps: 3, bias: false }, // Hyena's short filter
];
const describeCase = (c: Case) => `B=${c.batch} L=${c.length} C=${c.channels} K=${c.taps}${c.bias ? ' bias' : ''}`;

function draw(count: number, seed: number): Float32Array {
  const rng = new SeededRandom(seed, 'webgpu-causal-conv');
  return Float32Array.from({ length: count }, () => rng.normal());
}

/** y and the gradients of Σ y ⊙ u in x, the weight and (if any) the bias, on the current backend. */
async function valueAndGradients(c: Case): Promise<Float32Array[]> {
  const before = tf.memory().numTensors;
  const outputs = tf.tidy(() => {
    const x = tf.tensor3d(draw(c.batch * c.length * c.channels, 1), [c.batch, c.length, c.channels]);
    const weight = tf.tensor3d(draw(c.channels * c.taps, 2), [c.channels, 1, c.taps]);
    const bias = tf.tensor1d(draw(c.channels, 3));
    const u = tf.tensor3d(draw(c.batch * c.length * c.channels, 4), [c.batch, c.length, c.channels]);
    if (c.bias) {
      const f = (a: tf.Tensor, w: tf.Tensor, b: tf.Tensor) =>
        causalDepthwiseConv1d(a as tf.Tensor3D, w as tf.Tensor3D, b as tf.Tensor1D);
      return [f(x, weight, bias), ...tf.grads((a, w, b) => f(a, w, b).mul(u).sum())([x, weight, bias])];
    }
    const f = (a: tf.Tensor, w: tf.Tensor) => causalDepthwiseConv1d(a as tf.Tensor3D, w as tf.Tensor3D);
    return [f(x, weight), ...tf.grads((a, w) => f(a, w).mul(u).sum())([x, weight])];
  });
  const arrays = await Promise.all(outputs.map(async (tensor) => (await tensor.data()) as Float32Array));
  throwIfWebgpuFailed('the convolution test');
  tf.dispose(outputs);
  expect(tf.memory().numTensors, 'leaks').toBe(before);
  return arrays;
}

async function onCpu<T>(body: () => Promise<T>): Promise<T> {
  await tf.setBackend('cpu');
  try {
    return await body();
  } finally {
    await tf.setBackend('webgpu');
  }
}

function expectClose(actual: Float32Array[], expected: Float32Array[]): void {
  expect(actual).toHaveLength(expected.length);
  for (const [index, reference] of expected.entries()) {
    const result = actual[index] as Float32Array;
    expect(result).toHaveLength(reference.length);
    let diff = 0;
    let scale = 1;
    for (let i = 0; i < reference.length; i++) {
      diff = Math.max(diff, Math.abs((result[i] as number) - (reference[i] as number)));
      scale = Math.max(scale, Math.abs(reference[i] as number));
    }
    expect(diff / scale, ['y', 'dx', 'dweight', 'dbias'][index]).toBeLessThan(1e-5);
  }
}

const sameBits = (a: Float32Array[], b: Float32Array[]) =>
  a.every((array, index) => Buffer.from(array.buffer).equals(Buffer.from((b[index] as Float32Array).buffer)));

describe('fused causal convolution on webgpu = the tf-op form on cpu', () => {
  it.each(cases.map((c) => [describeCase(c), c] as const))('values and gradients (%s)', async (_name, c) => {
    const expected = await onCpu(() => valueAndGradients(c));
    const fused = await valueAndGradients(c);
    expectClose(fused, expected);
    expect(sameBits(fused, await valueAndGradients(c)), 'repeats bit for bit').toBe(true);
  });

  it('runs three kernels and a reduction per weight and bias, and no slices, pads or transposes', async () => {
    const c = cases[0] as Case;
    const info = await tf.profile(() => valueAndGradients(c));
    const names = info.kernels.map((kernel) => kernel.name);
    for (const name of ['InterleaveCausalConv', 'InterleaveCausalConvInputGrad', 'InterleaveCausalConvWeightGrad'])
      expect(names, name).toContain(name);
    for (const name of ['Slice', 'Pad', 'Transpose']) expect(names, name).not.toContain(name);
  });
});

describe('fused causal convolution in chunks of sequences', () => {
  afterEach(() => limitStorageBindingBytes(undefined));

  it('gives the tf-op values when the batch is split under a lowered binding cap', async () => {
    const c: Case = { batch: 5, length: 30, channels: 8, taps: 4, bias: true };
    const expected = await onCpu(() => valueAndGradients(c));
    // One sequence is 30·8 floats (960 bytes): a 2,000-byte cap makes chunks of two sequences.
    limitStorageBindingBytes(2000);
    expectClose(await valueAndGradients(c), expected);
  });
});
