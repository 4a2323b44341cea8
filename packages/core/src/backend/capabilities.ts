import * as tf from '@tensorflow/tfjs';

/** What a block may ask about the backend it runs on, to pick a formulation it supports. */
export interface BackendCapabilities {
  readonly name: string;
  /** True when the backend registers a kernel for `kernelName` (e.g. 'FFT', 'Einsum'). */
  hasKernel(kernelName: string): boolean;
}

export function capabilitiesOf(backendName: string): BackendCapabilities {
  const kernels = new Set(tf.getKernelsForBackend(backendName).map((kernel) => kernel.kernelName));
  return { name: backendName, hasKernel: (kernelName) => kernels.has(kernelName) };
}
