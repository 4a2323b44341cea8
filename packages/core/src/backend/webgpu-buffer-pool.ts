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
 *
 * A loop whose sizes change every iteration never lets a size go stale in that sense: attention's
 * step form grows its key/value cache by one position per token, so every token asks for new
 * sizes and leaves the old ones idle — at batch 1,000 on the order of an H200's 141 GB by 1,024
 * tokens (the likely cause of an evaluation that stopped there; docs/reproductions.md, section 3).
 * So idle buffers are also capped: when a buffer must be created while idle
 * buffers hold more than `idleBytesCap`, the sizes asked for least recently are destroyed first
 * until they hold no more than the cap.
 */
export interface BufferPoolLimits {
  idleBytesBeforeEviction: number;
  staleAfterAcquisitions: number;
  idleBytesCap: number;
}

export const DEFAULT_BUFFER_POOL_LIMITS: BufferPoolLimits = {
  idleBytesBeforeEviction: 2 ** 30,
  staleAfterAcquisitions: 200_000,
  // Above the idle bytes of every training step measured on the H200 (3.2 GiB for the reference
  // hybrid at B16 L1024), so a steady loop keeps its whole pool.
  idleBytesCap: 8 * 2 ** 30,
};

export interface PooledBuffer {
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

/**
 * How a recorded training step (webgpu-step-replay.ts) keeps the buffers its commands use out of
 * the pool: it sees every acquisition and release while it records, may keep a release for itself
 * (`true`), and takes idle buffers out of the pool once recording ends.
 */
export interface PoolObserver {
  acquired(buffer: PooledBuffer): void;
  /** Returns true to keep the buffer (the pool does not see it); false to release it as usual. */
  releasing(buffer: PooledBuffer, reuse: boolean): boolean;
}

export interface PoolControl {
  /** Observers in order; the first that keeps a release wins. */
  readonly observers: Set<PoolObserver>;
  /** While true, no idle buffer is destroyed (a recording may still name it). */
  evictionPaused: boolean;
  /** Removes these buffers from the idle lists; returns those found (now owned by the caller). */
  claimIdle(buffers: ReadonlySet<object>): PooledBuffer[];
  /** Releases a buffer the pool did not see released (kept by an observer), past the observers. */
  releaseKept(buffer: PooledBuffer, reuse: boolean): void;
  /** Destroys a claimed buffer (it is no longer in the pool's lists). */
  destroyClaimed(buffer: PooledBuffer): void;
}

const controls = new WeakMap<object, PoolControl>();

/** The control of the backend's limited pool, or undefined when `limitWebgpuBufferPool` did not run. */
export function webgpuPoolControl(backend: unknown): PoolControl | undefined {
  const manager = (backend as { bufferManager?: object }).bufferManager;
  return manager === undefined ? undefined : controls.get(manager);
}

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

  const control: PoolControl = {
    observers: new Set(),
    evictionPaused: false,
    claimIdle(buffers) {
      const claimed: PooledBuffer[] = [];
      for (const idle of manager.freeBuffers.values()) {
        for (let i = idle.length - 1; i >= 0; i--) {
          const buffer = idle[i] as PooledBuffer;
          if (!buffers.has(buffer)) continue;
          idle.splice(i, 1);
          manager.numFreeBuffers--;
          idleBytes -= buffer.size;
          claimed.push(buffer);
        }
      }
      return claimed;
    },
    releaseKept(buffer, reuse) {
      releaseToPool(buffer, reuse);
    },
    destroyClaimed(buffer) {
      buffer.destroy();
      manager.numBytesAllocated -= buffer.size;
    },
  };
  controls.set(manager, control);

  manager.acquireBuffer = (size, usage, mappedAtCreation = false, reuse = true) => {
    const key = `${size}_${usage}`;
    acquisitions++;
    lastAsked.set(key, acquisitions);
    const idle = manager.freeBuffers.get(key)?.length ?? 0;
    if (reuse && idle > 0) idleBytes -= size;
    else if (!control.evictionPaused) {
      if (idleBytes > limits.idleBytesBeforeEviction) evictStale();
      if (idleBytes > limits.idleBytesCap) evictLeastRecentlyAsked();
    }
    const buffer = acquire(size, usage, mappedAtCreation, reuse);
    for (const observer of control.observers) observer.acquired(buffer);
    return buffer;
  };

  manager.releaseBuffer = (buffer, reuse = true) => {
    for (const observer of control.observers) if (observer.releasing(buffer, reuse)) return;
    releaseToPool(buffer, reuse);
  };

  function releaseToPool(buffer: PooledBuffer, reuse: boolean): void {
    const before = manager.numFreeBuffers;
    release(buffer, reuse);
    if (manager.numFreeBuffers > before) idleBytes += buffer.size;
  }

  function evictStale(): void {
    for (const [key, buffers] of manager.freeBuffers) {
      if (buffers.length === 0 || acquisitions - (lastAsked.get(key) ?? 0) < limits.staleAfterAcquisitions) continue;
      destroyIdle(buffers, 0);
    }
  }

  function evictLeastRecentlyAsked(): void {
    const keys = [...manager.freeBuffers.entries()]
      .filter(([, buffers]) => buffers.length > 0)
      .sort(([a], [b]) => (lastAsked.get(a) ?? 0) - (lastAsked.get(b) ?? 0));
    for (const [, buffers] of keys) {
      if (idleBytes <= limits.idleBytesCap) return;
      destroyIdle(buffers, limits.idleBytesCap);
    }
  }

  /** Destroys `buffers` (idle, of one size) from the end until idle bytes are down to `floor`. */
  function destroyIdle(buffers: PooledBuffer[], floor: number): void {
    while (buffers.length > 0 && idleBytes > floor) {
      const buffer = buffers.pop() as PooledBuffer;
      // A buffer in the pool is no longer referenced by unsubmitted work; WebGPU defers the
      // actual release until submitted work that used it has finished.
      buffer.destroy();
      manager.numBytesAllocated -= buffer.size;
      manager.numFreeBuffers--;
      idleBytes -= buffer.size;
    }
  }
}
