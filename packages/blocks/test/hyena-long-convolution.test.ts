import { capabilitiesOf, selectBackend } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  causalLongConvolution,
  longConvolutionMethodFor,
  WEBGPU_DFT_MAX_LENGTH,
} from '../src/hyena/long-convolution.js';
import { convolutionCases } from './support/long-convolution-cases.js';

convolutionCases('cpu', ['fft', 'dft']);
convolutionCases('wasm', ['dft']);

describe('longConvolutionMethodFor', () => {
  const fakeBackend = (name: string, kernels: string[]) => ({ name, hasKernel: (k: string) => kernels.includes(k) });
  const fftKernels = ['FFT', 'IFFT', 'Complex', 'Real', 'Imag'];

  afterEach(() => {
    delete process.env.INTERLEAVE_LONG_CONV;
  });

  it('uses FFT where the backend has fast FFT kernels and DFT matmuls on cpu, wasm and short webgpu', async () => {
    await selectBackend('wasm');
    expect(longConvolutionMethodFor(capabilitiesOf('wasm'), 4096)).toBe('dft');
    expect(longConvolutionMethodFor(capabilitiesOf('cpu'), 4096)).toBe('dft');
    expect(capabilitiesOf('cpu').hasKernel('FFT')).toBe(true);
    expect(longConvolutionMethodFor(fakeBackend('webgpu', fftKernels), WEBGPU_DFT_MAX_LENGTH)).toBe('dft');
    expect(longConvolutionMethodFor(fakeBackend('webgpu', fftKernels), WEBGPU_DFT_MAX_LENGTH + 1)).toBe('fft');
    expect(longConvolutionMethodFor(fakeBackend('tensorflow', fftKernels), 64)).toBe('fft');
    expect(longConvolutionMethodFor(fakeBackend('other', ['FFT', 'IFFT']), 64)).toBe('dft');
  });

  it('follows INTERLEAVE_LONG_CONV', () => {
    process.env.INTERLEAVE_LONG_CONV = 'fft';
    expect(longConvolutionMethodFor(fakeBackend('wasm', []), 64)).toBe('fft');
    process.env.INTERLEAVE_LONG_CONV = 'dft';
    expect(longConvolutionMethodFor(fakeBackend('webgpu', fftKernels), 4096)).toBe('dft');
  });

  it('rejects a filter of the wrong shape', () => {
    const x = tf.zeros([1, 4, 2]) as tf.Tensor3D;
    const h = tf.zeros([2, 4]) as tf.Tensor2D;
    expect(() => causalLongConvolution(x, h, 'dft')).toThrow(/needs \[L, C\]/);
    tf.dispose([x, h]);
  });
});
