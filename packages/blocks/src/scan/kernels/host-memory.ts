import type * as tf from '@tensorflow/tfjs';

/** The parts of the cpu and wasm backends a host kernel uses (both keep tensors in JavaScript memory). */
interface CpuBackendAccess {
  readSync(dataId: object): unknown;
  makeTensorInfo(shape: number[], dtype: 'float32', values: Float32Array): tf.TensorInfo;
}
interface WasmBackendAccess {
  makeOutput(shape: number[], dtype: 'float32'): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Float32Array;
}
/**
 * tfjs-node's NodeJSKernelBackend, through the KernelBackend interface every backend has:
 * `readSync` copies a TensorFlow tensor out to a typed array, `write` hands one back (it becomes a
 * TensorFlow tensor when an op first reads it). TensorFlow keeps tensors in CPU memory too, so
 * those copies are memcpys, small beside the scans (measured in docs/benchmarks.md).
 */
interface KernelBackendAccess {
  readSync(dataId: object): unknown;
  write(values: Float32Array, shape: number[], dtype: 'float32'): object;
}

/** The backends whose tensors a host kernel can read and write in CPU memory. */
export const HOST_BACKENDS = ['cpu', 'wasm', 'tensorflow'] as const;
export type HostBackendName = (typeof HOST_BACKENDS)[number];

/**
 * Runs `compute` on the float32 contents of `inputs`, writing new outputs of `outputShapes`,
 * without copying on cpu and wasm (tensorflow copies in and out): on wasm, inputs and outputs
 * are views into the module's heap; every output is allocated before any view is taken, because
 * an allocation can grow the heap and detach earlier views. Outputs start zeroed.
 */
export function runOnHostMemory(
  backendName: HostBackendName,
  backend: unknown,
  inputs: readonly tf.TensorInfo[],
  outputShapes: readonly number[][],
  compute: (inputs: Float32Array[], outputs: Float32Array[]) => void,
): tf.TensorInfo[] {
  if (backendName === 'wasm') {
    const wasm = backend as WasmBackendAccess;
    const outputs = outputShapes.map((shape) => wasm.makeOutput(shape, 'float32'));
    const outputViews = outputs.map((info) => wasm.typedArrayFromHeap(info).fill(0));
    compute(
      inputs.map((info) => wasm.typedArrayFromHeap(info)),
      outputViews,
    );
    return outputs;
  }
  if (backendName === 'tensorflow') {
    const native = backend as KernelBackendAccess;
    const outputViews = outputShapes.map((shape) => new Float32Array(shape.reduce((size, extent) => size * extent, 1)));
    compute(
      inputs.map((info) => native.readSync(info.dataId) as Float32Array),
      outputViews,
    );
    return outputViews.map((values, index) => {
      const shape = outputShapes[index] as number[];
      return { dataId: native.write(values, shape, 'float32'), shape, dtype: 'float32' };
    });
  }
  const cpu = backend as CpuBackendAccess;
  const outputViews = outputShapes.map((shape) => new Float32Array(shape.reduce((size, extent) => size * extent, 1)));
  compute(
    inputs.map((info) => cpu.readSync(info.dataId) as Float32Array),
    outputViews,
  );
  return outputViews.map((values, index) => cpu.makeTensorInfo(outputShapes[index] as number[], 'float32', values));
}
