import type * as tf from '@tensorflow/tfjs';
import { HOST_BACKENDS, type HostBackendName, runOnHostMemory } from './host-memory.js';
import { registerOnce } from './register-once.js';
import { linearRecurrenceBackward, linearRecurrenceForward, type RecurrenceDims } from './scan-math.mjs';
import { linearRecurrenceBackwardOnGpu, linearRecurrenceForwardOnGpu } from './webgpu/linear-recurrence-wgsl.js';

/** tfjs kernel names: h = recurrence(a, b), and (da, db) given (a, h, dy). */
export const LINEAR_RECURRENCE_KERNEL = 'InterleaveLinearRecurrence';
export const LINEAR_RECURRENCE_GRAD_KERNEL = 'InterleaveLinearRecurrenceGrad';

function dimsOf(info: tf.TensorInfo): RecurrenceDims {
  const [batch, length, features] = info.shape as [number, number, number];
  return { batch, length, features };
}

// One multiply-add per element: memory-bound, so these run on the calling thread. Copying to
// shared memory for a worker would move as many bytes as the recurrence itself reads.
function forwardKernel(backendName: HostBackendName): tf.KernelFunc {
  return ({ inputs, backend }) => {
    const { a, b } = inputs as Record<'a' | 'b', tf.TensorInfo>;
    const dims = dimsOf(a);
    const [output] = runOnHostMemory(backendName, backend, [a, b], [a.shape], ([av, bv], [h]) => {
      linearRecurrenceForward(
        { a: av as Float32Array, b: bv as Float32Array, h: h as Float32Array },
        dims,
        0,
        dims.features,
      );
    });
    return output as tf.TensorInfo;
  };
}

function backwardKernel(backendName: HostBackendName): tf.KernelFunc {
  return ({ inputs, backend }) => {
    const { a, h, dy } = inputs as Record<'a' | 'h' | 'dy', tf.TensorInfo>;
    const dims = dimsOf(a);
    return runOnHostMemory(backendName, backend, [a, h, dy], [a.shape, a.shape], ([av, hv, dyv], [da, db]) => {
      const arrays = { a: av, h: hv, dy: dyv, da, db } as Record<string, Float32Array>;
      linearRecurrenceBackward(arrays, dims, 0, dims.features);
    });
  };
}

for (const backendName of HOST_BACKENDS) {
  registerOnce(LINEAR_RECURRENCE_KERNEL, backendName, forwardKernel(backendName));
  registerOnce(LINEAR_RECURRENCE_GRAD_KERNEL, backendName, backwardKernel(backendName));
}

// On webgpu the same kernels are WGSL shaders (webgpu/linear-recurrence-wgsl.ts).
registerOnce(LINEAR_RECURRENCE_KERNEL, 'webgpu', ({ inputs, backend }) => {
  const { a, b } = inputs as Record<'a' | 'b', tf.TensorInfo>;
  return linearRecurrenceForwardOnGpu(backend as tf.KernelBackend, [a, b]);
});
registerOnce(LINEAR_RECURRENCE_GRAD_KERNEL, 'webgpu', ({ inputs, backend }) => {
  const { a, h, dy } = inputs as Record<'a' | 'h' | 'dy', tf.TensorInfo>;
  return linearRecurrenceBackwardOnGpu(backend as tf.KernelBackend, [a, h, dy]);
});
