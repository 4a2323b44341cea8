import * as tf from '@tensorflow/tfjs';
import { afterEach, describe, expect, it } from 'vitest';
import { backendFromEnvironment, capabilitiesOf, explainMissingKernel, selectBackend } from '../../src/index.js';

describe('backend selection', () => {
  afterEach(() => {
    delete process.env.INTERLEAVE_BACKEND;
  });

  it('starts an explicitly named backend that is available', async () => {
    expect((await selectBackend('cpu')).name).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    const wasm = await selectBackend('wasm');
    expect(wasm.detail).toMatch(/^wasm \(\d+ threads?\)$/);
    expect(tf.getBackend()).toBe('wasm');
  });

  it('in auto mode, says why each better backend was passed over', async () => {
    const choice = await selectBackend('auto');
    const order = ['tensorflow', 'webgpu', 'wasm', 'cpu'];
    expect(choice.skipped.map((line) => line.split(':')[0])).toEqual(order.slice(0, order.indexOf(choice.name)));
    expect(tf.getBackend()).toBe(choice.name);
  });

  it('refuses a named backend that cannot start, instead of falling back', async () => {
    const auto = await selectBackend('auto');
    // webgpu, named, falls back to its software device (webgpu-device.test.ts), so only the others.
    const unavailable = auto.skipped.map((line) => line.split(':')[0]).filter((name) => name === 'tensorflow');
    for (const name of unavailable) {
      await expect(selectBackend(name as 'tensorflow', 'test.yaml (backend)')).rejects.toThrow(
        `test.yaml (backend) asks for backend '${name}', which is not available here: ${name}:`,
      );
    }
  });

  it('never starts a backend INTERLEAVE_DISABLE_BACKENDS names, named or under auto, and rejects unknown names', async () => {
    const saved = process.env.INTERLEAVE_DISABLE_BACKENDS;
    try {
      process.env.INTERLEAVE_DISABLE_BACKENDS = 'tensorflow, wasm';
      await expect(selectBackend('wasm', 'test.yaml (backend)')).rejects.toThrow(
        "test.yaml (backend) asks for backend 'wasm', which is not available here: wasm: switched off by INTERLEAVE_DISABLE_BACKENDS=tensorflow, wasm",
      );
      process.env.INTERLEAVE_DISABLE_BACKENDS = 'tensorflow,webgpu,wasm';
      const auto = await selectBackend('auto');
      expect(auto.name).toBe('cpu');
      expect(auto.skipped.map((line) => line.split(':')[0])).toEqual(['tensorflow', 'webgpu', 'wasm']);
      expect(auto.skipped[0]).toContain('switched off by INTERLEAVE_DISABLE_BACKENDS');
      process.env.INTERLEAVE_DISABLE_BACKENDS = 'tensorflw';
      await expect(selectBackend('cpu')).rejects.toThrow(
        "INTERLEAVE_DISABLE_BACKENDS='tensorflw' names tensorflw, not one of tensorflow, webgpu, wasm, cpu",
      );
    } finally {
      if (saved === undefined) delete process.env.INTERLEAVE_DISABLE_BACKENDS;
      else process.env.INTERLEAVE_DISABLE_BACKENDS = saved;
    }
  });

  it('reads INTERLEAVE_BACKEND and rejects unknown names', () => {
    expect(backendFromEnvironment()).toBeUndefined();
    process.env.INTERLEAVE_BACKEND = 'wasm';
    expect(backendFromEnvironment()).toBe('wasm');
    process.env.INTERLEAVE_BACKEND = 'gpu';
    expect(() => backendFromEnvironment()).toThrow("INTERLEAVE_BACKEND='gpu' is not one of");
  });

  it('reports which kernels a backend lacks (wasm has no FFT or Einsum; cpu has both)', async () => {
    await selectBackend('wasm');
    await selectBackend('cpu');
    const wasm = capabilitiesOf('wasm');
    const cpu = capabilitiesOf('cpu');
    expect([
      wasm.hasKernel('FFT'),
      wasm.hasKernel('Einsum'),
      wasm.hasKernel('MatMul') || wasm.hasKernel('BatchMatMul'),
    ]).toEqual([false, false, true]);
    expect([cpu.hasKernel('FFT'), cpu.hasKernel('Einsum')]).toEqual([true, true]);
  });
});

describe('missing kernels', () => {
  it('turns a tfjs missing-kernel error into one line that names the kernel and the backend', async () => {
    await selectBackend('wasm');
    let thrown: unknown;
    try {
      tf.einsum('ij,jk->ik', tf.ones([2, 2]), tf.ones([2, 2]));
    } catch (error) {
      thrown = error;
    }
    const explained = explainMissingKernel(thrown);
    expect(explained?.message).toBe(
      "the wasm backend has no 'Einsum' kernel, which this model needs; choose another backend (backend: cpu has every kernel) or a block that supports wasm",
    );
    expect(explainMissingKernel(new Error('something else'))).toBeUndefined();
  });
});
