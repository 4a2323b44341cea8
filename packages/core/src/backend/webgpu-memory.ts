/**
 * GPU memory held through the webgpu backend: every buffer created on its device, until
 * destroyed. tfjs-webgpu pools buffers rather than freeing them, and fused kernels may create
 * their own, so counting at the device covers both; `tf.memory()` counts tensors only.
 */

export interface WebgpuMemory {
  /** Bytes in buffers created and not yet destroyed. */
  readonly liveBytes: number;
  /** The most `liveBytes` reached since tracking began or the last `resetWebgpuPeak`. */
  readonly peakBytes: number;
}

let live = 0;
let peak = 0;
let tracking = false;
const tracked = new WeakSet<GPUDevice>();

/** Counts the buffers of `device` from now on (idempotent). */
export function trackWebgpuMemory(device: GPUDevice): void {
  if (tracked.has(device)) return;
  tracked.add(device);
  tracking = true;
  const create = device.createBuffer.bind(device);
  device.createBuffer = (descriptor: GPUBufferDescriptor) => {
    const buffer = create(descriptor);
    const size = descriptor.size;
    live += size;
    peak = Math.max(peak, live);
    const destroy = buffer.destroy.bind(buffer);
    let destroyed = false;
    buffer.destroy = () => {
      if (!destroyed) live -= size;
      destroyed = true;
      destroy();
    };
    return buffer;
  };
}

/** Undefined unless the webgpu backend has started in this process. */
export function webgpuMemory(): WebgpuMemory | undefined {
  return tracking ? { liveBytes: live, peakBytes: peak } : undefined;
}

/** Starts a new peak from what is held now (e.g. at the start of one measurement). */
export function resetWebgpuPeak(): void {
  peak = live;
}
