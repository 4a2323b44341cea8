import { limitStorageBindingBytes, SeededRandom } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type SelectiveScanKernel,
  selectiveScanKernel,
  selectiveScanLargestBinding,
} from '../src/scan/kernels/webgpu/selective-scan-wgsl.js';
import { linearRecurrence, type RecurrenceImplementation } from '../src/scan/linear-recurrence.js';
import { type ScanImplementation, selectiveScan } from '../src/scan/selective-scan.js';
import {
  draw,
  type FlatInputs,
  INPUT_NAMES,
  type InputName,
  randomInputs,
  relativeError,
  type Shape,
  sequentialReference,
} from './support/selective-scan-reference.js';
import { startWebgpuBackend } from './support/webgpu-device.js';

/**
 * The WGSL kernels (src/scan/kernels/webgpu/) on tfjs's webgpu backend, here Dawn over Mesa's
 * llvmpipe: values and every gradient against the float64 references and the tf-op scans on
 * the same backend. webgpu reads back asynchronously only, hence `data()` throughout.
 */

async function read(tensors: tf.Tensor[]): Promise<Float32Array[]> {
  return Promise.all(tensors.map(async (tensor) => (await tensor.data()) as Float32Array));
}

async function selectiveScanWithGradients(
  inputs: FlatInputs,
  w: Float32Array,
  shape: Shape,
  implementation: ScanImplementation,
) {
  const { batch, length, dInner, dState } = shape;
  const outputs = tf.tidy(() => {
    const tensors = [
      tf.tensor3d(inputs.x, [batch, length, dInner]),
      tf.tensor3d(inputs.dt, [batch, length, dInner]),
      tf.tensor2d(inputs.a, [dInner, dState]),
      tf.tensor3d(inputs.b, [batch, length, dState]),
      tf.tensor3d(inputs.c, [batch, length, dState]),
    ];
    const weights = tf.tensor3d(w, [batch, length, dInner]);
    const scan = (x: tf.Tensor, dt: tf.Tensor, a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
      selectiveScan({ x, dt, a, b, c } as Parameters<typeof selectiveScan>[0], implementation);
    const y = scan(...(tensors as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]));
    const grads = tf.grads((x, dt, a, b, c) => scan(x, dt, a, b, c).mul(weights).sum())(tensors);
    return [y, ...grads];
  });
  const [y, ...grads] = await read(outputs);
  tf.dispose(outputs);
  return {
    y: y as Float32Array,
    grads: Object.fromEntries(INPUT_NAMES.map((name, index) => [name, grads[index]])) as Record<
      InputName,
      Float32Array
    >,
  };
}

async function expectSelectiveScansAgree(shape: Shape, dtScale: number) {
  const inputs = randomInputs(shape, dtScale);
  const w = draw(shape.batch * shape.length * shape.dInner, (rng) => rng.normal(), 9);
  const reference = sequentialReference(inputs, w, shape);
  for (const implementation of ['fused', 'ops'] as const) {
    const before = tf.memory().numTensors;
    const result = await selectiveScanWithGradients(inputs, w, shape, implementation);
    expect(tf.memory().numTensors, `${implementation} leaks`).toBe(before);
    expect(result.y.every(Number.isFinite), `${implementation} y finite`).toBe(true);
    expect(relativeError(result.y, reference.y), `${implementation} y`).toBeLessThan(1e-4);
    for (const name of INPUT_NAMES) {
      expect(result.grads[name].every(Number.isFinite), `${implementation} d${name} finite`).toBe(true);
      expect(relativeError(result.grads[name], reference.grads[name]), `${implementation} d${name}`).toBeLessThan(1e-4);
    }
  }
}

beforeAll(async () => {
  await startWebgpuBackend();
});

const kernelSetting = process.env.INTERLEAVE_SCAN_KERNEL;

afterEach(() => {
  limitStorageBindingBytes(undefined);
  if (kernelSetting === undefined) delete process.env.INTERLEAVE_SCAN_KERNEL;
  else process.env.INTERLEAVE_SCAN_KERNEL = kernelSetting;
});

describe('selective scan WGSL kernel on webgpu = tf-op scan = float64 reference', () => {
  it('runs as the default implementation on webgpu', () => {
    expect(tf.getBackend()).toBe('webgpu');
    expect(tf.getKernel('InterleaveSelectiveScan', 'webgpu')).toBeDefined();
    expect(tf.getKernel('InterleaveSelectiveScanGrad', 'webgpu')).toBeDefined();
    delete process.env.INTERLEAVE_SCAN_KERNEL;
    expect(selectiveScanKernel(16)).toBe('lanes');
  });

  it.each([
    ['moderate Δ', 1],
    ['large Δ (decays underflow to 0)', 200],
    ['tiny Δ (decays round to 1)', 1e-5],
  ])('agrees in value and all five gradients (%s)', async (_label, dtScale) => {
    // L = 37 ends in a partial checkpoint chunk; d_inner = 70 spans two workgroups, the second mostly idle.
    await expectSelectiveScansAgree({ batch: 2, length: 37, dInner: 70, dState: 4 }, dtScale);
  });

  it("agrees at Mamba's d_state of 16 over L = 1024", async () => {
    // 64 checkpoint chunks: the backward walk spans several dispatches, carrying its gradients between them.
    await expectSelectiveScansAgree({ batch: 2, length: 1024, dInner: 8, dState: 16 }, 0.05);
  });

  it.each([
    // 12 states: 21 channels of 12 lanes per workgroup (4 lanes spare); L = 45 ends inside a reduction block and a chunk.
    [
      'd_state 12 over three workgroups, L not a multiple of the blocks',
      { batch: 2, length: 45, dInner: 50, dState: 12 },
    ],
    ['d_state 5, 51 channels a workgroup', { batch: 3, length: 21, dInner: 53, dState: 5 }],
    ['d_state 64, four channels a workgroup', { batch: 1, length: 19, dInner: 9, dState: 64 }],
    // 1,300 steps: forward, checkpoint and backward walks each span six dispatches handing state on.
    ['L = 1300 over several dispatches', { batch: 1, length: 1300, dInner: 5, dState: 6 }],
  ])('agrees in value and all five gradients (%s)', async (_label, shape) => {
    await expectSelectiveScansAgree(shape, 0.3);
  });

  it('gives bit-identical values and gradients run to run', async () => {
    const shape = { batch: 3, length: 70, dInner: 40, dState: 16 };
    const inputs = randomInputs(shape, 0.5);
    const w = draw(shape.batch * shape.length * shape.dInner, (rng) => rng.normal(), 9);
    const first = await selectiveScanWithGradients(inputs, w, shape, 'fused');
    const second = await selectiveScanWithGradients(inputs, w, shape, 'fused');
    expect(Array.from(second.y)).toEqual(Array.from(first.y));
    for (const name of INPUT_NAMES)
      expect(Array.from(second.grads[name]), `d${name}`).toEqual(Array.from(first.grads[name]));
  });

  it.each(['lanes', 'channels'] as SelectiveScanKernel[])(
    'INTERLEAVE_SCAN_KERNEL=%s selects that kernel, which agrees with the reference',
    async (kernel) => {
      process.env.INTERLEAVE_SCAN_KERNEL = kernel;
      expect(selectiveScanKernel(16)).toBe(kernel);
      await expectSelectiveScansAgree({ batch: 2, length: 33, dInner: 20, dState: 16 }, 0.3);
    },
  );

  it('uses the channels kernel past 256 states, and names a bad INTERLEAVE_SCAN_KERNEL in one line', () => {
    expect(selectiveScanKernel(256)).toBe('lanes');
    expect(selectiveScanKernel(257)).toBe('channels');
    process.env.INTERLEAVE_SCAN_KERNEL = 'warps';
    expect(() => selectiveScanKernel(16)).toThrow("INTERLEAVE_SCAN_KERNEL must be 'lanes' or 'channels', got 'warps'");
  });

  it.each([
    ['one workgroup', { batch: 5, length: 20, dInner: 6, dState: 4 }],
    ['three workgroups of 16 states', { batch: 5, length: 20, dInner: 40, dState: 16 }],
  ])(
    'splits a batch whose buffers pass the storage-binding cap, with the same values and gradients (%s)',
    async (_label, shape) => {
      const inputs = randomInputs(shape, 1);
      const w = draw(shape.batch * shape.length * shape.dInner, (rng) => rng.normal(), 9);
      const whole = await selectiveScanWithGradients(inputs, w, shape, 'fused');
      // Room for two sequences per call: the batch of 5 runs as 2 + 2 + 1.
      limitStorageBindingBytes(2 * 4 * selectiveScanLargestBinding({ ...shape, batch: 1 }));
      const before = tf.memory().numTensors;
      const chunked = await selectiveScanWithGradients(inputs, w, shape, 'fused');
      expect(tf.memory().numTensors).toBe(before);
      expect(Array.from(chunked.y)).toEqual(Array.from(whole.y));
      for (const name of INPUT_NAMES) {
        expect(relativeError(chunked.grads[name], whole.grads[name]), `d${name}`).toBeLessThan(1e-6);
      }
      const reference = sequentialReference(inputs, w, shape);
      expect(relativeError(chunked.grads.a, reference.grads.a)).toBeLessThan(1e-4);
    },
  );

  it('says which scan cannot fit when one sequence alone passes the cap', () => {
    limitStorageBindingBytes(64);
    const x = tf.zeros([1, 16, 8]) as tf.Tensor3D;
    const b = tf.zeros([1, 16, 4]) as tf.Tensor3D;
    const a = tf.fill([8, 4], -1) as tf.Tensor2D;
    expect(() => selectiveScan({ x, dt: x, a, b, c: b }, 'fused')).toThrow(
      /selective scan over \[1, 16, 8\] with d_state 4 needs a \d+-byte storage binding for one sequence, over this GPU's 64-byte limit/,
    );
    tf.dispose([x, b, a]);
  });
});

describe('linear recurrence WGSL kernel on webgpu = tf-op scan = float64 reference', () => {
  type Dims = [batch: number, length: number, features: number];

  function reference(a: Float32Array, b: Float32Array, w: Float32Array, [batch, length, features]: Dims) {
    const h = new Float64Array(a.length);
    const gradA = new Float64Array(a.length);
    const gradB = new Float64Array(a.length);
    const at = (bi: number, t: number, f: number) => (bi * length + t) * features + f;
    for (let bi = 0; bi < batch; bi++) {
      for (let f = 0; f < features; f++) {
        for (let t = 0; t < length; t++) {
          const previous = t > 0 ? (h[at(bi, t - 1, f)] as number) : 0;
          h[at(bi, t, f)] = (a[at(bi, t, f)] as number) * previous + (b[at(bi, t, f)] as number);
        }
        let future = 0;
        for (let t = length - 1; t >= 0; t--) {
          const g = (w[at(bi, t, f)] as number) + future;
          gradB[at(bi, t, f)] = g;
          gradA[at(bi, t, f)] = t > 0 ? g * (h[at(bi, t - 1, f)] as number) : 0;
          future = g * (a[at(bi, t, f)] as number);
        }
      }
    }
    return { h, gradA, gradB };
  }

  async function run(a: Float32Array, b: Float32Array, w: Float32Array, dims: Dims, impl: RecurrenceImplementation) {
    const outputs = tf.tidy(() => {
      const [at, bt, wt] = [a, b, w].map((values) => tf.tensor3d(values, dims));
      const recurrence = (x: tf.Tensor, y: tf.Tensor) => linearRecurrence(x as tf.Tensor3D, y as tf.Tensor3D, impl);
      const h = recurrence(at as tf.Tensor, bt as tf.Tensor);
      const grads = tf.grads((x, y) =>
        recurrence(x, y)
          .mul(wt as tf.Tensor)
          .sum(),
      )([at as tf.Tensor, bt as tf.Tensor]);
      return [h, ...grads];
    });
    const [h, gradA, gradB] = (await read(outputs)) as [Float32Array, Float32Array, Float32Array];
    tf.dispose(outputs);
    return { h, gradA, gradB };
  }

  it.each([
    ['a short batch over two workgroups', [3, 29, 70] as Dims],
    ['a long sequence', [1, 2048, 5] as Dims],
  ])('agrees in value and both gradients (%s)', async (_label, dims) => {
    const size = dims[0] * dims[1] * dims[2];
    const rng = new SeededRandom(7, 'webgpu-linear-recurrence');
    const a = Float32Array.from({ length: size }, () => rng.uniform(0.5, 1));
    const b = Float32Array.from({ length: size }, () => rng.normal());
    const w = Float32Array.from({ length: size }, () => rng.normal());
    const expected = reference(a, b, w, dims);
    for (const impl of ['fused', 'ops'] as const) {
      const before = tf.memory().numTensors;
      const result = await run(a, b, w, dims, impl);
      expect(tf.memory().numTensors, `${impl} leaks`).toBe(before);
      expect(relativeError(result.h, expected.h), `${impl} h`).toBeLessThan(1e-4);
      expect(relativeError(result.gradA, expected.gradA), `${impl} da`).toBeLessThan(1e-4);
      expect(relativeError(result.gradB, expected.gradB), `${impl} db`).toBeLessThan(1e-4);
    }
  });

  it('splits a batch past the storage-binding cap with the same results', async () => {
    const dims: Dims = [5, 16, 8];
    const size = 5 * 16 * 8;
    const rng = new SeededRandom(8, 'webgpu-linear-recurrence');
    const a = Float32Array.from({ length: size }, () => rng.uniform(0, 1));
    const b = Float32Array.from({ length: size }, () => rng.normal());
    const w = Float32Array.from({ length: size }, () => rng.normal());
    const whole = await run(a, b, w, dims, 'fused');
    limitStorageBindingBytes(2 * 16 * 8 * 4);
    const chunked = await run(a, b, w, dims, 'fused');
    expect(Array.from(chunked.h)).toEqual(Array.from(whole.h));
    expect(Array.from(chunked.gradA)).toEqual(Array.from(whole.gradA));
    expect(Array.from(chunked.gradB)).toEqual(Array.from(whole.gradB));
  });
});
