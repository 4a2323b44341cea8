import type * as tf from '@tensorflow/tfjs';
import { HOST_BACKENDS, type HostBackendName, runOnHostMemory } from './host-memory.js';
import { registerOnce } from './register-once.js';
import { type SelectiveScanDims, selectiveScanBackward, selectiveScanForward } from './scan-math.mjs';
import { SharedArena } from './shared-arena.js';
import { simdScanApplies, simdSelectiveScanBackward, simdSelectiveScanForward } from './simd/selective-scan-simd.js';
import { selectiveScanBackwardOnGpu, selectiveScanForwardOnGpu } from './webgpu/selective-scan-wgsl.js';
import { kernelThreadCount, kernelWorkerPool } from './worker-pool.js';

/** tfjs kernel names: y = scan(x, dt, a, b, c), and its five input gradients given dy. */
export const SELECTIVE_SCAN_KERNEL = 'InterleaveSelectiveScan';
export const SELECTIVE_SCAN_GRAD_KERNEL = 'InterleaveSelectiveScanGrad';

/**
 * Below this many state updates (B·L·d_inner·d_state) a call runs on the calling thread alone:
 * waking the workers and copying to shared memory costs more than it saves.
 */
const PARALLEL_MIN_WORK = 1 << 17;

const arena = new SharedArena();

function dimsOf(x: tf.TensorInfo, a: tf.TensorInfo): SelectiveScanDims {
  const [batch, length, dInner] = x.shape as [number, number, number];
  return { batch, length, dInner, dState: a.shape[1] as number };
}

function parallelThreads(dims: SelectiveScanDims): number {
  const work = dims.batch * dims.length * dims.dInner * dims.dState;
  return work < PARALLEL_MIN_WORK ? 1 : Math.min(kernelThreadCount(), dims.dInner);
}

function forwardKernel(backendName: HostBackendName): tf.KernelFunc {
  return ({ inputs, backend }) => {
    const { x, dt, a, b, c } = inputs as Record<'x' | 'dt' | 'a' | 'b' | 'c', tf.TensorInfo>;
    const dims = dimsOf(x, a);
    const simd = simdScanApplies(dims);
    const threads = simd ? 1 : parallelThreads(dims);
    const [output] = runOnHostMemory(backendName, backend, [x, dt, a, b, c], [x.shape], (values, [y]) => {
      const [xv, dtv, av, bv, cv] = values as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array];
      if (simd) {
        simdSelectiveScanForward({ x: xv, dt: dtv, a: av, b: bv, c: cv }, dims, y as Float32Array);
        return;
      }
      if (threads === 1) {
        selectiveScanForward({ x: xv, dt: dtv, a: av, b: bv, c: cv, y: y as Float32Array }, dims, 0, dims.dInner);
        return;
      }
      const shared = {
        x: arena.copy('x', xv),
        dt: arena.copy('dt', dtv),
        a: arena.copy('a', av),
        b: arena.copy('b', bv),
        c: arena.copy('c', cv),
        y: arena.float32('y', (y as Float32Array).length),
      };
      kernelWorkerPool(threads).run('selectiveScanForward', () => shared, dims, dims.dInner);
      (y as Float32Array).set(shared.y);
    });
    return output as tf.TensorInfo;
  };
}

function backwardKernel(backendName: HostBackendName): tf.KernelFunc {
  return ({ inputs, backend }) => {
    const { x, dt, a, b, c, dy } = inputs as Record<'x' | 'dt' | 'a' | 'b' | 'c' | 'dy', tf.TensorInfo>;
    const dims = dimsOf(x, a);
    const simd = simdScanApplies(dims);
    const threads = simd ? 1 : parallelThreads(dims);
    const outputShapes = [x.shape, dt.shape, a.shape, b.shape, c.shape];
    return runOnHostMemory(backendName, backend, [x, dt, a, b, c, dy], outputShapes, (values, outputs) => {
      const [xv, dtv, av, bv, cv, dyv] = values as [
        Float32Array,
        Float32Array,
        Float32Array,
        Float32Array,
        Float32Array,
        Float32Array,
      ];
      const [dx, ddt, da, db, dc] = outputs as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array];
      if (simd) {
        const inputs = { x: xv, dt: dtv, a: av, b: bv, c: cv, dy: dyv };
        simdSelectiveScanBackward(inputs, dims, { dx, ddt, da, db, dc });
        return;
      }
      const bcLength = db.length;
      const partials = Array.from({ length: threads }, (_, slice) => ({
        db: threads === 1 ? new Float64Array(bcLength) : arena.float64(`db${slice}`, bcLength).fill(0),
        dc: threads === 1 ? new Float64Array(bcLength) : arena.float64(`dc${slice}`, bcLength).fill(0),
      }));
      if (threads === 1) {
        const arrays = { x: xv, dt: dtv, a: av, b: bv, c: cv, dy: dyv, dx, ddt, da } as Record<string, Float32Array>;
        const [partial] = partials as [{ db: Float64Array; dc: Float64Array }];
        selectiveScanBackward({ ...arrays, dbPartial: partial.db, dcPartial: partial.dc }, dims, 0, dims.dInner);
      } else {
        const shared = {
          x: arena.copy('x', xv as Float32Array),
          dt: arena.copy('dt', dtv as Float32Array),
          a: arena.copy('a', av as Float32Array),
          b: arena.copy('b', bv as Float32Array),
          c: arena.copy('c', cv as Float32Array),
          dy: arena.copy('dy', dyv as Float32Array),
          dx: arena.float32('dx', dx.length),
          ddt: arena.float32('ddt', ddt.length),
          da: arena.float32('da', da.length),
        };
        const arraysFor = (slice: number) => {
          const partial = partials[slice] as { db: Float64Array; dc: Float64Array };
          return { ...shared, dbPartial: partial.db, dcPartial: partial.dc };
        };
        kernelWorkerPool(threads).run('selectiveScanBackward', arraysFor, dims, dims.dInner);
        dx.set(shared.dx);
        ddt.set(shared.ddt);
        da.set(shared.da);
      }
      for (const partial of partials) {
        for (let index = 0; index < bcLength; index++) {
          db[index] = (db[index] as number) + (partial.db[index] as number);
          dc[index] = (dc[index] as number) + (partial.dc[index] as number);
        }
      }
    });
  };
}

for (const backendName of HOST_BACKENDS) {
  registerOnce(SELECTIVE_SCAN_KERNEL, backendName, forwardKernel(backendName));
  registerOnce(SELECTIVE_SCAN_GRAD_KERNEL, backendName, backwardKernel(backendName));
}

// On webgpu the same kernels are WGSL shaders (webgpu/selective-scan-wgsl.ts).
registerOnce(SELECTIVE_SCAN_KERNEL, 'webgpu', ({ inputs, backend }) => {
  const { x, dt, a, b, c } = inputs as Record<'x' | 'dt' | 'a' | 'b' | 'c', tf.TensorInfo>;
  return selectiveScanForwardOnGpu(backend as tf.KernelBackend, [x, dt, a, b, c]);
});
registerOnce(SELECTIVE_SCAN_GRAD_KERNEL, 'webgpu', ({ inputs, backend }) => {
  const { x, dt, a, b, c, dy } = inputs as Record<'x' | 'dt' | 'a' | 'b' | 'c' | 'dy', tf.TensorInfo>;
  return selectiveScanBackwardOnGpu(backend as tf.KernelBackend, [x, dt, a, b, c, dy]);
});
