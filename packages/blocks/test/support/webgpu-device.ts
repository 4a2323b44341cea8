import { limitWebgpuBufferPool } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';

/**
 * Starts tfjs's webgpu backend on a machine without a GPU: Dawn's OpenGL backend over Mesa's
 * llvmpipe (Debian: libegl-mesa0 libegl1 libgles2 libgl1-mesa-dri), in WebGPU's compatibility
 * mode. The one place the WGSL kernel tests get their device, so that it can be swapped for
 * the project's shared start-up once that lands. Compatibility mode has lower limits than a
 * GPU (a 128 MiB storage binding here): it checks correctness, never speed.
 */
export async function startLlvmpipeWebgpu(): Promise<void> {
  if (tf.getBackend() === 'webgpu') return;
  process.env.EGL_PLATFORM ??= 'surfaceless';
  const { create, globals } = await import('webgpu');
  const gpu = create(['backend=opengl']);
  const requestAdapter = gpu.requestAdapter.bind(gpu);
  // tfjs asks for an adapter without a feature level; the OpenGL backend only offers compatibility.
  gpu.requestAdapter = (options?: GPURequestAdapterOptions) =>
    requestAdapter({ ...options, featureLevel: 'compatibility' } as GPURequestAdapterOptions);
  const adapter = await gpu.requestAdapter();
  if (adapter === null) {
    throw new Error(
      'no WebGPU adapter on llvmpipe: install libegl-mesa0 libegl1 libgles2 libgl1-mesa-dri (apt-get) and run again',
    );
  }
  Object.assign(globalThis, globals);
  Object.defineProperty(globalThis, 'navigator', {
    value: { gpu, userAgent: 'node' },
    configurable: true,
    writable: true,
  });
  await import('@tensorflow/tfjs-backend-webgpu');
  const warn = console.warn;
  console.warn = () => {};
  try {
    if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs-webgpu did not start on llvmpipe');
  } finally {
    console.warn = warn;
  }
  // As select-backend does for a real GPU.
  limitWebgpuBufferPool(tf.backend());
  await tf.ready();
}
