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
 * - **Bind-group layouts.** Every dispatch asks its pipeline for `getBindGroupLayout(0)`, a native
 *   call that returns a new object each time; the layout is cached per pipeline.
 * - **Bind groups.** Every dispatch creates a bind group (the costliest of its native calls, ~14–22
 *   µs on llvmpipe). A training loop with fixed shapes binds the same buffers at the same offsets
 *   step after step (tfjs's pool hands sizes out in a repeating order), so bind groups are cached
 *   by layout and bound ranges; an entry dies with any buffer it names.
 * - **Uniforms.** Every dispatch takes a uniform buffer from the pool and writes it with its own
 *   `queue.writeBuffer`. Here a submit's uniforms are packed into one arena buffer at offsets the
 *   device allows and written with one `writeBuffer` just before the submit.
 * - **Submits.** tfjs submits every `WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE` (15) dispatches. Fewer,
 *   larger submits cost less, but tfjs can reuse a freed buffer only after the submit, so memory
 *   grows with the batch: the batch is raised and a submit is forced once the tensors waiting to
 *   be freed hold `pendingBytesBeforeSubmit`.
 *
 * `INTERLEAVE_WEBGPU_PER_OP=stock` leaves tfjs as it is (for A/B measurements).
 */
export interface PerOpSettings {
  /** Dispatches between submits (tfjs's WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE). */
  submitBatch: number;
  /** Bytes of freed-but-unreleased tensors that force a submit before the batch is full. */
  pendingBytesBeforeSubmit: number;
}

export const DEFAULT_PER_OP_SETTINGS: PerOpSettings = {
  submitBatch: 64,
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
  cacheBindGroupLayouts(target.device);
  cacheBindGroups(target.device);
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

function cacheBindGroupLayouts(device: GPUDevice): void {
  const probe = device.createComputePipeline({
    layout: 'auto',
    compute: {
      module: device.createShaderModule({ code: '@compute @workgroup_size(1) fn main() {}' }),
      entryPoint: 'main',
    },
  });
  const prototype = Object.getPrototypeOf(probe) as {
    getBindGroupLayout(this: GPUComputePipeline, index: number): GPUBindGroupLayout;
    __interleaveCachedLayouts?: true;
  };
  if (prototype.__interleaveCachedLayouts) return;
  const stock = prototype.getBindGroupLayout;
  const cache = new WeakMap<object, GPUBindGroupLayout[]>();
  // The layouts of an auto-layout pipeline never change, so one object per index serves every bind group.
  prototype.getBindGroupLayout = function cachedLayout(index) {
    let layouts = cache.get(this);
    if (layouts === undefined) {
      layouts = [];
      cache.set(this, layouts);
    }
    layouts[index] ??= stock.call(this, index);
    return layouts[index];
  };
  prototype.__interleaveCachedLayouts = true;
}

/** Counters of the bind-group cache, for the kernel probe. */
export const bindGroupCacheStats = { hits: 0, misses: 0, evicted: 0 };

/** Entries before the cache is emptied: bounds what it holds in a process that changes shapes. */
const BIND_GROUP_CACHE_ENTRIES = 50_000;

function cacheBindGroups(device: GPUDevice): void {
  const stockCreate = device.createBindGroup.bind(device);
  const ids = new WeakMap<object, number>();
  let nextId = 1;
  const idOf = (thing: object) => {
    let id = ids.get(thing);
    if (id === undefined) {
      id = nextId++;
      ids.set(thing, id);
    }
    return id;
  };
  const cache = new Map<string, GPUBindGroup>();
  // Which keys name a buffer, so that destroying it drops them (a bind group over a destroyed
  // buffer fails validation when used).
  const keysByBuffer = new Map<object, string[]>();
  device.createBindGroup = (descriptor) => {
    let key = `${idOf(descriptor.layout)}`;
    for (const entry of descriptor.entries) {
      const resource = entry.resource as { buffer?: object; offset?: number; size?: number };
      if (resource.buffer === undefined) return stockCreate(descriptor);
      key += `|${entry.binding}:${idOf(resource.buffer)}:${resource.offset ?? 0}:${resource.size ?? -1}`;
    }
    const found = cache.get(key);
    if (found !== undefined) {
      bindGroupCacheStats.hits++;
      return found;
    }
    bindGroupCacheStats.misses++;
    if (cache.size >= BIND_GROUP_CACHE_ENTRIES) {
      cache.clear();
      keysByBuffer.clear();
    }
    const created = stockCreate(descriptor);
    cache.set(key, created);
    for (const entry of descriptor.entries) {
      const buffer = (entry.resource as { buffer: object }).buffer;
      const keys = keysByBuffer.get(buffer);
      if (keys === undefined) keysByBuffer.set(buffer, [key]);
      else keys.push(key);
    }
    return created;
  };
  const probe = device.createBuffer({ size: 4, usage: GPUBufferUsage.STORAGE });
  const prototype = Object.getPrototypeOf(probe) as { destroy(this: GPUBuffer): void };
  probe.destroy();
  const stockDestroy = prototype.destroy;
  prototype.destroy = function destroyAndForget() {
    const keys = keysByBuffer.get(this);
    if (keys !== undefined) {
      for (const key of keys) if (cache.delete(key)) bindGroupCacheStats.evicted++;
      keysByBuffer.delete(this);
    }
    stockDestroy.call(this);
  };
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
