import * as tf from '@tensorflow/tfjs';

/**
 * tfjs-webgpu (4.22) spends most of a small op's time on the CPU, in work that can be avoided
 * without changing what runs on the GPU (docs/gpu.md, "Per-op cost", has the H200 profile):
 *
 * - **Uploads.** A tensor with CPU values gets a pooled buffer, then tfjs creates a mapped staging
 *   buffer (a fresh GPU allocation), fills it, records a copy and destroys it after the submit. A
 *   training step uploads every batch and every scalar constant this way. Here the pooled buffer
 *   is filled by `queue.writeBuffer`, which Dawn stages in memory it keeps. Safe because tfjs never
 *   hands out a buffer that commands still waiting in its unsubmitted encoder use (a tensor freed
 *   there is only released at the submit), and the queue runs the write before that encoder.
 * - **Uniforms.** Every dispatch takes a uniform buffer from the pool and writes it with its own
 *   `queue.writeBuffer`. Here a submit's uniforms are packed into one arena buffer at offsets the
 *   device allows and written with one `writeBuffer` just before the submit.
 * - **Submits.** tfjs submits every `WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE` (15) dispatches. Fewer,
 *   larger submits cost less, but tfjs can reuse a freed buffer only after the submit, so memory
 *   grows with the batch: the batch is raised and a submit is forced once the tensors waiting to
 *   be freed hold `pendingBytesBeforeSubmit`.
 *
 * Measured and left alone: creating a bind group per dispatch (~2 µs on the H200's Vulkan; a cache
 * keyed by the bound buffers hit 3–7% of the time, since tfjs's pool hands out different buffers
 * from step to step) and `getBindGroupLayout` (~0.1 µs).
 *
 * `INTERLEAVE_WEBGPU_PER_OP=stock` leaves tfjs as it is (for A/B measurements).
 */
export interface PerOpSettings {
  /**
   * Dispatches between submits (tfjs's WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE). A submit costs ~140 µs
   * of CPU on the H200; 256 against 64 took the reference hybrid's step from 165 to 126 ms and
   * the demo's from 24 to 16 ms, with the same peak memory (docs/gpu.md).
   */
  submitBatch: number;
  /** Bytes of freed-but-unreleased tensors that force a submit before the batch is full. */
  pendingBytesBeforeSubmit: number;
}

export const DEFAULT_PER_OP_SETTINGS: PerOpSettings = {
  submitBatch: 256,
  pendingBytesBeforeSubmit: 256 * 2 ** 20,
};

/** Bytes per uniform arena buffer: well under every device's maxUniformBufferBindingSize (64 KiB). */
const ARENA_BYTES = 64 * 1024;

interface GpuBufferLike {
  readonly size: number;
}

interface UniformField {
  type: string;
  data: number[];
}

interface TensorDataLike {
  values: ArrayLike<number> | null | undefined;
  dtype: string;
  shape: number[];
  resource: unknown;
}

/** The parts of tfjs-webgpu's backend object this module replaces or reads. */
interface WebgpuBackendInternals {
  device: GPUDevice;
  queue: GPUQueue;
  tensorMap: { get(dataId: object): TensorDataLike | undefined };
  bufferManager: { acquireBuffer(size: number, usage: number): GpuBufferLike };
  uniformPendingDisposal: GpuBufferLike[];
  tensorDataPendingDisposal: object[];
  commandEncoder: unknown;
  uploadToGPU(dataId: object): void;
  makeUniforms(fields: UniformField[]): { offset: number; size: number; buffer: GpuBufferLike };
  submitQueue(): void;
  endComputePassEncoder(): void;
  runWebGPUProgram(...args: unknown[]): unknown;
}

const installed = new WeakSet<object>();

/** Whether the env asks to keep tfjs-webgpu's own per-op code. */
export function perOpChangesDisabled(): boolean {
  return process.env.INTERLEAVE_WEBGPU_PER_OP === 'stock';
}

/** Installs the changes above on tfjs's webgpu backend (once per backend). */
export function reduceWebgpuPerOpCost(backend: unknown, settings = DEFAULT_PER_OP_SETTINGS): void {
  const target = backend as WebgpuBackendInternals;
  if (installed.has(target) || perOpChangesDisabled()) return;
  installed.add(target);
  uploadThroughQueueWrites(target);
  const arena = new UniformArena(target);
  target.makeUniforms = (fields) => arena.place(fields);
  submitLessOften(target, settings, arena);
}

function uploadThroughQueueWrites(backend: WebgpuBackendInternals): void {
  const stockUpload = backend.uploadToGPU.bind(backend);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  backend.uploadToGPU = (dataId) => {
    const data = backend.tensorMap.get(dataId);
    const words = data === undefined || data.resource != null ? undefined : uploadWords(data);
    if (words === undefined || data === undefined) {
      stockUpload(dataId);
      return;
    }
    const buffer = backend.bufferManager.acquireBuffer(words.byteLength, usage);
    backend.queue.writeBuffer(buffer as GPUBuffer, 0, words.buffer, words.byteOffset, words.byteLength);
    data.values = null;
    data.resource = buffer;
  };
}

/** The 32-bit words tfjs would upload for `data` (bool as int32), or undefined to leave it to tfjs. */
function uploadWords(data: TensorDataLike): Float32Array | Int32Array | undefined {
  const { values, dtype } = data;
  if (values == null || values.length === 0) return undefined;
  if (dtype === 'float32') return values instanceof Float32Array ? values : Float32Array.from(values);
  if (dtype === 'int32' || dtype === 'bool') return values instanceof Int32Array ? values : Int32Array.from(values);
  return undefined;
}

/**
 * Packs each dispatch's uniform struct into a shared buffer, laid out by WGSL's uniform rules as
 * tfjs lays them out (a field of 1 word aligns to 4 bytes, 2 words to 8, 3–6 words to 16, and a
 * field after a 5- or 6-word one to 16; the struct's size rounds up to its largest alignment).
 */
class UniformArena {
  private readonly mirror = new ArrayBuffer(ARENA_BYTES);
  private readonly words = new DataView(this.mirror);
  private readonly alignment: number;
  private buffer: GpuBufferLike | undefined;
  private used = 0;

  constructor(private readonly backend: WebgpuBackendInternals) {
    this.alignment = backend.device.limits.minUniformBufferOffsetAlignment;
  }

  place(fields: UniformField[]): { offset: number; size: number; buffer: GpuBufferLike } {
    const layout = structLayout(fields);
    let offset = Math.ceil(this.used / this.alignment) * this.alignment;
    if (this.buffer === undefined || offset + layout.size > ARENA_BYTES) {
      this.flush();
      this.buffer = this.backend.bufferManager.acquireBuffer(
        ARENA_BYTES,
        GPUBufferUsage.COPY_DST | GPUBufferUsage.UNIFORM,
      );
      offset = 0;
    }
    // Padding keeps no bytes of earlier uniforms: a recorded step (webgpu-step-replay.ts) compares
    // the arena bytes of two steps and must see only the fields.
    new Uint8Array(this.mirror, this.used, offset + layout.size - this.used).fill(0);
    fields.forEach((field, i) => {
      const start = offset + (layout.offsets[i] ?? 0);
      const data = field.data.length === 0 ? [1] : field.data;
      data.forEach((value, k) => {
        if (field.type === 'float32') this.words.setFloat32(start + 4 * k, value, true);
        else if (field.type === 'uint32') this.words.setUint32(start + 4 * k, value, true);
        else this.words.setInt32(start + 4 * k, value, true);
      });
    });
    this.used = offset + layout.size;
    return { offset, size: layout.size, buffer: this.buffer };
  }

  /** Writes the placed uniforms to the GPU; the buffer goes back to the pool after the coming submit. */
  flush(): void {
    if (this.buffer === undefined) return;
    if (this.used > 0) this.backend.queue.writeBuffer(this.buffer as GPUBuffer, 0, this.mirror, 0, this.used);
    this.backend.uniformPendingDisposal.push(this.buffer);
    this.buffer = undefined;
    this.used = 0;
  }
}

export function structLayout(fields: readonly UniformField[]): { offsets: number[]; size: number } {
  const offsets: number[] = [];
  let cursor = 0;
  let largest = 1;
  let previousWords = 0;
  for (const field of fields) {
    const words = Math.max(1, field.data.length);
    if (words > 6) throw new Error(`a ${words}-word uniform field (tfjs supports at most 6)`);
    let alignment = words === 1 ? 4 : words === 2 ? 8 : 16;
    if (previousWords === 5 || previousWords === 6) alignment = 16;
    largest = Math.max(largest, alignment);
    cursor = Math.ceil(cursor / alignment) * alignment;
    offsets.push(cursor);
    cursor += 4 * words;
    previousWords = words;
  }
  return { offsets, size: Math.ceil(cursor / largest) * largest };
}

function submitLessOften(backend: WebgpuBackendInternals, settings: PerOpSettings, arena: UniformArena): void {
  tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', settings.submitBatch);
  const stockSubmit = backend.submitQueue.bind(backend);
  let counted = 0;
  let pendingBytes = 0;
  backend.submitQueue = () => {
    arena.flush();
    stockSubmit();
    counted = 0;
    pendingBytes = 0;
  };
  const stockRun = backend.runWebGPUProgram.bind(backend);
  backend.runWebGPUProgram = (...args) => {
    const output = stockRun(...args);
    const pending = backend.tensorDataPendingDisposal;
    for (; counted < pending.length; counted++) {
      const entry = pending[counted];
      const resource = entry === undefined ? undefined : backend.tensorMap.get(entry)?.resource;
      pendingBytes += (resource as GpuBufferLike | undefined)?.size ?? 0;
    }
    if (pendingBytes > settings.pendingBytesBeforeSubmit && backend.commandEncoder != null) {
      backend.endComputePassEncoder();
      backend.submitQueue();
    }
    return output;
  };
}
