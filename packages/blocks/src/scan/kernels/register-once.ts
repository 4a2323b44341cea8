import * as tf from '@tensorflow/tfjs';

/** Registers a kernel unless one is already registered (tfjs warns on duplicates, e.g. when a test reloads modules). */
export function registerOnce(kernelName: string, backendName: string, kernelFunc: tf.KernelFunc): void {
  if (tf.getKernel(kernelName, backendName) === undefined) tf.registerKernel({ kernelName, backendName, kernelFunc });
}

/** Whether the current backend has `kernelName`: then the fused path runs there. */
export function currentBackendHas(kernelName: string): boolean {
  return tf.getKernel(kernelName, tf.getBackend()) !== undefined;
}
