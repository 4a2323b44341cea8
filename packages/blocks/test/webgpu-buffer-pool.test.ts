import { limitWebgpuBufferPool } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { startWebgpuBackend } from './support/webgpu-device.js';

/**
 * The bound on tfjs-webgpu's free-buffer pool (packages/core/src/backend/webgpu-buffer-pool.ts),
 * on a fresh instance of tfjs-webgpu's own BufferManager over the llvmpipe device, with tight
 * limits: idle buffers of sizes no longer asked for are destroyed once new buffers are needed,
 * while sizes still in use stay pooled.
 */
interface Buffer {
  size: number;
}
interface BufferManager {
  numBytesAllocated: number;
  numFreeBuffers: number;
  acquireBuffer(size: number, usage: number): Buffer;
  releaseBuffer(buffer: Buffer): void;
}

const STORAGE = 0x80 | 0x8 | 0x4; // GPUBufferUsage STORAGE | COPY_DST | COPY_SRC
const MiB = 2 ** 20;
let manager: BufferManager;

beforeAll(async () => {
  await startWebgpuBackend();
  const backend = tf.backend() as unknown as { device: unknown; bufferManager: BufferManager };
  const BufferManagerClass = backend.bufferManager.constructor as new (device: unknown) => BufferManager;
  manager = new BufferManagerClass(backend.device);
  limitWebgpuBufferPool({ bufferManager: manager } as unknown as tf.KernelBackend, {
    idleBytesBeforeEviction: 0,
    staleAfterAcquisitions: 4,
    idleBytesCap: Number.POSITIVE_INFINITY,
  });
});

describe('the webgpu buffer pool limit', () => {
  it('destroys idle buffers of stale sizes when a new buffer is needed, and keeps sizes in use', () => {
    const stale = [manager.acquireBuffer(4 * MiB, STORAGE), manager.acquireBuffer(4 * MiB, STORAGE)];
    for (const buffer of stale) manager.releaseBuffer(buffer);
    expect(manager.numBytesAllocated).toBe(8 * MiB);
    expect(manager.numFreeBuffers).toBe(2);
    // A size asked for every other acquisition stays fresh; new sizes miss the pool.
    for (let round = 1; round <= 4; round++) {
      const reused = manager.acquireBuffer(1024, STORAGE);
      manager.releaseBuffer(reused);
      manager.releaseBuffer(manager.acquireBuffer(1024 + 256 * round, STORAGE));
    }
    // At each miss, sizes not asked for in the last 4 acquisitions were destroyed: the 4 MiB pair,
    // then the one-off sizes 1280 and 1536; the reused size and the two newest stay pooled.
    expect(manager.numBytesAllocated).toBe(1024 + 1792 + 2048);
    expect(manager.numFreeBuffers).toBe(3);
    const again = manager.acquireBuffer(1024, STORAGE);
    expect(manager.numBytesAllocated).toBe(1024 + 1792 + 2048);
    manager.releaseBuffer(again);
  });

  it('caps idle bytes, destroying the sizes asked for least recently first', () => {
    const backend = tf.backend() as unknown as { device: unknown; bufferManager: BufferManager };
    const BufferManagerClass = backend.bufferManager.constructor as new (device: unknown) => BufferManager;
    const capped = new BufferManagerClass(backend.device);
    // Staleness never triggers here: only the cap can evict.
    limitWebgpuBufferPool({ bufferManager: capped } as unknown as tf.KernelBackend, {
      idleBytesBeforeEviction: Number.POSITIVE_INFINITY,
      staleAfterAcquisitions: Number.POSITIVE_INFINITY,
      idleBytesCap: 4 * MiB,
    });
    // Sizes asked for in the order 1, 2, 3 MiB, all idle: 6 MiB over a 4 MiB cap.
    const held = [1, 2, 3].map((mib) => capped.acquireBuffer(mib * MiB, STORAGE));
    for (const buffer of held) capped.releaseBuffer(buffer);
    expect(capped.numBytesAllocated).toBe(6 * MiB);
    // A miss: the 1 and 2 MiB buffers go (idle 3 MiB ≤ the cap), the 3 MiB one stays pooled.
    const fresh = capped.acquireBuffer(256, STORAGE);
    expect(capped.numBytesAllocated).toBe(3 * MiB + 256);
    expect(capped.numFreeBuffers).toBe(1);
    const reused = capped.acquireBuffer(3 * MiB, STORAGE);
    expect(capped.numBytesAllocated).toBe(3 * MiB + 256);
    // A hit never evicts, whatever the idle bytes.
    capped.releaseBuffer(reused);
    capped.releaseBuffer(fresh);
    expect(capped.numFreeBuffers).toBe(2);
  });
});
