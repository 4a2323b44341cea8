import type * as tf from '@tensorflow/tfjs';

/**
 * tfjs-webgpu (4.22) keeps every freed GPU buffer in a pool keyed by exact size and usage and
 * never gives one back: a training loop with fixed shapes reuses them all, but a process that
 * moves on to other shapes (evaluation at another batch, the next benchmark row, a longer
 * sequence) keeps the old sizes allocated — 101 GiB held for 0.37 GiB of live tensors in one
 * H200 measurement (docs/gpu.md). This bounds the pool: when a buffer must be created while idle
 * buffers hold more than `idleBytesBeforeEviction`, the idle buffers of sizes not asked for in the
 * last `staleAfterAcquisitions` acquisitions are destroyed. Sizes a loop uses every step are never
 * stale, so a steady training loop keeps its pool.
 */
export interface BufferPoolLimits {
  idleBytesBeforeEviction: number;
  staleAfterAcquisitions: number;
}

export const DEFAULT_BUFFER_POOL_LIMITS: BufferPoolLimits = {
  idleBytesBeforeEviction: 2 ** 30,
  staleAfterAcquisitions: 200_000,
};

interface PooledBuffer {
  readonly size: number;
  readonly usage: number;
  destroy(): void;
}

/** The parts of tfjs-webgpu's BufferManager this module wraps. */
interface BufferManagerInternals {
  freeBuffers: Map<string, PooledBuffer[]>;
  numFreeBuffers: number;
  numBytesAllocated: number;
  acquireBuffer(size: number, usage: number, mappedAtCreation?: boolean, reuse?: boolean): PooledBuffer;
  releaseBuffer(buffer: PooledBuffer, reuse?: boolean): void;
}

const limited = new WeakSet<object>();

/** Installs the eviction policy on the webgpu backend's buffer pool (once per backend). */
export function limitWebgpuBufferPool(backend: tf.KernelBackend, limits = DEFAULT_BUFFER_POOL_LIMITS): void {
  const found = (backend as unknown as { bufferManager?: BufferManagerInternals }).bufferManager;
  if (found === undefined || limited.has(found)) return;
  const manager: BufferManagerInternals = found;
  limited.add(manager);
  const lastAsked = new Map<string, number>();
  let acquisitions = 0;
  let idleBytes = 0;
  const acquire = manager.acquireBuffer.bind(manager);
  const release = manager.releaseBuffer.bind(manager);

  manager.acquireBuffer = (size, usage, mappedAtCreation = false, reuse = true) => {
    const key = `${size}_${usage}`;
    acquisitions++;
    lastAsked.set(key, acquisitions);
    const idle = manager.freeBuffers.get(key)?.length ?? 0;
    if (reuse && idle > 0) idleBytes -= size;
    else if (idleBytes > limits.idleBytesBeforeEviction) evictStale();
    return acquire(size, usage, mappedAtCreation, reuse);
  };

  manager.releaseBuffer = (buffer, reuse = true) => {
    const before = manager.numFreeBuffers;
    release(buffer, reuse);
    if (manager.numFreeBuffers > before) idleBytes += buffer.size;
  };

  function evictStale(): void {
    for (const [key, buffers] of manager.freeBuffers) {
      if (buffers.length === 0 || acquisitions - (lastAsked.get(key) ?? 0) < limits.staleAfterAcquisitions) continue;
      for (const buffer of buffers) {
        // A buffer in the pool is no longer referenced by unsubmitted work; WebGPU defers the
        // actual release until submitted work that used it has finished.
        buffer.destroy();
        manager.numBytesAllocated -= buffer.size;
        manager.numFreeBuffers--;
        idleBytes -= buffer.size;
      }
      buffers.length = 0;
    }
  }
}
