import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { findGpuDevice, selectBackend, webgpuDeviceInfo } from '../../src/index.js';

const SOFTWARE_DETAIL = 'webgpu (Dawn OpenGL on llvmpipe, compatibility mode: correctness only, slow)';

describe('the webgpu backend without a GPU', () => {
  it('named, starts on the GPU, else on Dawn OpenGL over llvmpipe, and says which', async () => {
    const choice = await selectBackend('webgpu', 'test');
    const gpu = await findGpuDevice();
    if (gpu.found) expect(choice.detail).toBe(gpu.device.detail);
    else expect(choice.detail).toBe(SOFTWARE_DETAIL);
    expect(tf.getBackend()).toBe('webgpu');
    // Kernels read the device's limits to say when they need more than it allows.
    const info = webgpuDeviceInfo(tf.findBackend('webgpu'));
    expect(info?.software).toBe(!gpu.found);
    if (info?.software) expect(info.limits.maxStorageBufferBindingSize).toBe(128 * 2 ** 20);

    // It computes: a matmul and its gradient agree with the cpu backend.
    const a = [
      [1, 2, 3],
      [4, 5, 6],
    ];
    const b = [
      [0.5, -1],
      [2, 0.25],
      [-3, 1],
    ];
    // (Read back asynchronously: tfjs-webgpu's synchronous read needs a browser canvas.)
    const compute = async () => {
      const [product, grad] = tf.tidy(() => {
        const x = tf.tensor2d(a);
        const y = tf.tensor2d(b);
        return [tf.matMul(x, y), tf.grad((input: tf.Tensor) => tf.matMul(input, y).square().sum())(x)];
      });
      const values = [await product.array(), await grad.array()];
      tf.dispose([product, grad]);
      return values;
    };
    const onWebgpu = await compute();
    await selectBackend('cpu');
    const onCpu = await compute();
    expect(onWebgpu).toEqual(onCpu);
  });

  it('computes a small op on the GPU even when its input still holds CPU values', async () => {
    await selectBackend('webgpu', 'test');
    // exp of 100 values: once from a tensor made from CPU values (as restored weights are), once
    // from the same values produced on the GPU. tfjs would compute the first on the CPU, which
    // rounds differently; the two must give the same bits.
    const values = Float32Array.from({ length: 2000 }, (_, i) => Math.sin(i) * 3 + 0.1234567);
    const fromCpu = tf.tensor1d(values.slice(0, 100));
    // Sliced out of 2,000 values: large enough that tfjs computes it on the GPU in any case.
    const onGpu = tf.tidy(() => tf.tensor1d(values).slice(0, 100));
    await onGpu.data();
    const [a, b] = [tf.exp(fromCpu), tf.exp(onGpu)];
    expect(Array.from(await a.data())).toEqual(Array.from(await b.data()));
    tf.dispose([fromCpu, onGpu, a, b]);
  });

  it('auto never picks the software device', async () => {
    // Where the native TensorFlow backend is built, auto would stop there before looking at webgpu
    // (and loading it beside Dawn in one process is not what this test is about).
    const saved = process.env.INTERLEAVE_AUTO_SKIP;
    process.env.INTERLEAVE_AUTO_SKIP = 'tensorflow';
    try {
      const choice = await selectBackend('auto');
      expect(choice.name).not.toBe('tensorflow');
      expect(choice.detail).not.toContain('llvmpipe');
      expect(choice.detail).not.toContain('compatibility mode');
    } finally {
      if (saved === undefined) delete process.env.INTERLEAVE_AUTO_SKIP;
      else process.env.INTERLEAVE_AUTO_SKIP = saved;
    }
  });
});
