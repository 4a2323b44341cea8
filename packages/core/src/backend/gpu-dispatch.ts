import * as tf from '@tensorflow/tfjs';
import { InterleaveError } from '../errors.js';

/**
 * Interleave's own dispatch of hand-written WGSL compute shaders inside tfjs-webgpu's command
 * stream. tfjs's `runWebGPUProgram` binds exactly one output and prepends its own prelude to
 * every shader; the fused scans need several outputs (a gradient kernel writes dx, dΔ, dA, dB
 * and dC) and scratch space, so they record their dispatches here instead: the same device,
 * command encoder, compute pass, buffer pool, uniform handling and deferred-release bookkeeping
 * as tfjs's own kernels, so they interleave with them in order and their buffers return to
 * tfjs's pool when the tensors die.
 */

/** The few WebGPU objects used here, structurally (the `webgpu` package supplies the real ones). */
interface GpuBuffer {
  readonly size: number;
}
interface GpuPipeline {
  getBindGroupLayout(index: number): unknown;
}
interface GpuComputePass {
  setPipeline(pipeline: GpuPipeline): void;
  setBindGroup(index: number, group: unknown): void;
  dispatchWorkgroups(x: number, y?: number, z?: number): void;
}
interface GpuCommandEncoder {
  beginComputePass(descriptor: object): GpuComputePass;
  copyBufferToBuffer(
    source: GpuBuffer,
    sourceOffset: number,
    target: GpuBuffer,
    targetOffset: number,
    size: number,
  ): void;
}
interface GpuDevice {
  readonly limits: {
    readonly maxStorageBufferBindingSize: number;
    readonly maxStorageBuffersPerShaderStage: number;
    readonly maxComputeWorkgroupsPerDimension: number;
    readonly maxComputeWorkgroupStorageSize: number;
    readonly maxComputeInvocationsPerWorkgroup: number;
  };
  createShaderModule(descriptor: { code: string; label?: string }): unknown;
  createComputePipeline(descriptor: object): GpuPipeline;
  createBindGroup(descriptor: object): unknown;
}

/** The parts of tfjs-webgpu's `WebGPUBackend` (4.22) this module drives. */
interface WebgpuBackendInternals {
  device: GpuDevice;
  tensorMap: { get(dataId: object): { resource: GpuBuffer | null } | undefined };
  commandEncoder: GpuCommandEncoder | null;
  computePassEncoder: GpuComputePass | null;
  commandQueueOwnedIds: WeakSet<object>;
  dispatchCountInPass: number;
  makeTensorInfo(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  uploadToGPU(dataId: object): void;
  disposeData(dataId: object, force?: boolean): boolean;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  makeUniforms(uniforms: { type: 'uint32' | 'float32' | 'int32'; data: number[] }[]): object;
}

export interface Dispatch {
  /** Cache key of the shader text (the pipeline is compiled once per device and key). */
  key: string;
  shader: () => string;
  /** Tensors bound as storage buffers 0…k−1, in the shader's order; the uniforms follow at binding k. */
  bindings: tf.TensorInfo[];
  /** The 32-bit fields of the shader's uniform struct, in declaration order, as u32 words (f32 fields through `f32Bits`). */
  uniforms: number[];
  workgroups: [number, number?, number?];
}

const pipelines = new WeakMap<GpuDevice, Map<string, GpuPipeline>>();

export class GpuKernelContext {
  private readonly internals: WebgpuBackendInternals;

  constructor(backend: tf.KernelBackend) {
    this.internals = backend as unknown as WebgpuBackendInternals;
  }

  get limits(): GpuDevice['limits'] {
    return this.internals.device.limits;
  }

  /** A new float32 tensor on the GPU; its contents are undefined until a shader writes them. */
  allocate(shape: number[]): tf.TensorInfo {
    const info = this.internals.makeTensorInfo(shape, 'float32');
    this.internals.uploadToGPU(info.dataId);
    return info;
  }

  /** Gives a scratch tensor back: tfjs returns its buffer to the pool once queued work is submitted. */
  release(info: tf.TensorInfo): void {
    this.internals.disposeData(info.dataId);
  }

  run(dispatch: Dispatch): void {
    const backend = this.internals;
    const pipeline = this.pipeline(dispatch);
    const entries = dispatch.bindings.map((tensor, binding) => {
      backend.uploadToGPU(tensor.dataId);
      backend.commandQueueOwnedIds.add(tensor.dataId);
      return { binding, resource: { buffer: this.bufferOf(tensor) } };
    });
    const uniforms = backend.makeUniforms(dispatch.uniforms.map((value) => ({ type: 'uint32', data: [value] })));
    entries.push({ binding: entries.length, resource: uniforms as { buffer: GpuBuffer } });
    const bindGroup = backend.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    backend.ensureCommandEncoderReady();
    if (backend.computePassEncoder === null) {
      backend.computePassEncoder = (backend.commandEncoder as GpuCommandEncoder).beginComputePass({});
    }
    const pass = backend.computePassEncoder;
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    const [x, y = 1, z = 1] = dispatch.workgroups;
    pass.dispatchWorkgroups(x, y, z);
    backend.dispatchCountInPass++;
    if (backend.dispatchCountInPass >= tf.env().getNumber('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE')) {
      backend.endComputePassEncoder();
      backend.submitQueue();
    }
  }

  /** Copies `size` float32 values between tensors' buffers, in queue order with the dispatches. */
  copy(source: tf.TensorInfo, sourceOffset: number, target: tf.TensorInfo, targetOffset: number, size: number): void {
    const backend = this.internals;
    backend.uploadToGPU(source.dataId);
    backend.ensureCommandEncoderReady();
    backend.endComputePassEncoder();
    backend.commandQueueOwnedIds.add(source.dataId);
    backend.commandQueueOwnedIds.add(target.dataId);
    (backend.commandEncoder as GpuCommandEncoder).copyBufferToBuffer(
      this.bufferOf(source),
      sourceOffset * 4,
      this.bufferOf(target),
      targetOffset * 4,
      size * 4,
    );
  }

  private bufferOf(tensor: tf.TensorInfo): GpuBuffer {
    const resource = this.internals.tensorMap.get(tensor.dataId)?.resource;
    if (resource === null || resource === undefined) throw new Error('a fused kernel input has no GPU buffer');
    return resource;
  }

  private pipeline(dispatch: Dispatch): GpuPipeline {
    const device = this.internals.device;
    let cache = pipelines.get(device);
    if (cache === undefined) {
      cache = new Map();
      pipelines.set(device, cache);
    }
    let pipeline = cache.get(dispatch.key);
    if (pipeline === undefined) {
      const module = device.createShaderModule({ code: dispatch.shader(), label: dispatch.key });
      pipeline = device.createComputePipeline({
        layout: 'auto',
        compute: { module, entryPoint: 'main' },
        label: dispatch.key,
      });
      cache.set(dispatch.key, pipeline);
    }
    return pipeline;
  }
}

/** Threads per workgroup of the element-wise helper shaders. */
export const FLAT_WORKGROUP = 256;

/**
 * Workgroups for `count` independent threads of `FLAT_WORKGROUP`, folded into a second dimension
 * past the per-dimension limit; the shader recovers the flat index with `flatIndex` below.
 */
export function flatWorkgroups(count: number, limits: GpuDevice['limits']): [number, number] {
  const groups = Math.max(1, Math.ceil(count / FLAT_WORKGROUP));
  const width = Math.min(groups, limits.maxComputeWorkgroupsPerDimension);
  return [width, Math.ceil(groups / width)];
}

/**
 * WGSL declarations of storage bindings 0…k−1 in a `Dispatch`'s order, all `array<f32>`: the
 * `inputs` read-only, then the `outputs` read_write (the uniforms follow at binding k).
 */
export function storageBindingsWgsl(inputs: readonly string[], outputs: readonly string[]): string {
  return [...inputs.map((name) => [name, 'read'] as const), ...outputs.map((name) => [name, 'read_write'] as const)]
    .map(([name, access], index) => `@group(0) @binding(${index}) var<storage, ${access}> ${name}: array<f32>;`)
    .join('\n');
}

/** WGSL: the flat thread index of a `flatWorkgroups` dispatch. */
export const FLAT_INDEX_WGSL = `
fn flatIndex(id: vec3<u32>, groups: vec3<u32>) -> u32 {
  return id.x + id.y * groups.x * ${FLAT_WORKGROUP}u;
}`;

let bindingLimitOverride: number | undefined;

/**
 * Lowers the storage-binding cap the fused kernels plan their batch chunks for (undefined: the
 * device's own, 2 GiB on most GPUs), so that the chunked path can be checked on a small device.
 */
export function limitStorageBindingBytes(bytes: number | undefined): void {
  bindingLimitOverride = bytes;
}

/** The largest storage binding a kernel may use on webgpu (the device's, or the lowered cap); unbounded elsewhere. */
export function storageBindingLimitBytes(): number {
  if (tf.getBackend() !== 'webgpu') return Number.POSITIVE_INFINITY;
  const device = (tf.backend() as unknown as WebgpuBackendInternals).device;
  return Math.min(bindingLimitOverride ?? Number.POSITIVE_INFINITY, device.limits.maxStorageBufferBindingSize);
}

/**
 * How many sequences one fused call may take so that no storage binding exceeds the device's
 * cap, given the floats of its largest binding at batch 1; the whole batch off webgpu.
 */
export function sequencesPerCall(batch: number, largestBindingFloatsPerSequence: number, what: string): number {
  if (tf.getBackend() !== 'webgpu') return batch;
  const limit = storageBindingLimitBytes();
  const perSequenceBytes = largestBindingFloatsPerSequence * 4;
  if (perSequenceBytes > limit) {
    throw new InterleaveError(
      `${what} needs a ${perSequenceBytes}-byte storage binding for one sequence, over this GPU's ${limit}-byte limit (shorten the sequence)`,
    );
  }
  return Math.max(1, Math.min(batch, Math.floor(limit / perSequenceBytes)));
}

/** A float32 uniform field's bits, for `Dispatch.uniforms` (which writes u32 words). */
export function f32Bits(value: number): number {
  return new Uint32Array(new Float32Array([value]).buffer)[0] as number;
}
