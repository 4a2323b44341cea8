/**
 * Grow-only SharedArrayBuffers, one per array role, reused from one kernel call to the next so
 * that a training step does not allocate (and zero) tens of MiB of shared memory per scan.
 */
export class SharedArena {
  private readonly buffers = new Map<string, SharedArrayBuffer>();

  float32(role: string, length: number): Float32Array {
    return new Float32Array(this.buffer(role, length * Float32Array.BYTES_PER_ELEMENT), 0, length);
  }

  float64(role: string, length: number): Float64Array {
    return new Float64Array(this.buffer(role, length * Float64Array.BYTES_PER_ELEMENT), 0, length);
  }

  /** A float32 copy of `values` in shared memory. */
  copy(role: string, values: Float32Array): Float32Array {
    const shared = this.float32(role, values.length);
    shared.set(values);
    return shared;
  }

  private buffer(role: string, bytes: number): SharedArrayBuffer {
    const existing = this.buffers.get(role);
    if (existing !== undefined && existing.byteLength >= bytes) return existing;
    const grown = new SharedArrayBuffer(Math.max(bytes, 2 * (existing?.byteLength ?? 0)));
    this.buffers.set(role, grown);
    return grown;
  }
}
