import { structLayout } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { startWebgpuBackend } from './support/webgpu-device.js';

/**
 * The per-op changes to tfjs-webgpu (packages/core/src/backend/webgpu-per-op.ts), on the llvmpipe
 * device: uniforms packed into an arena must be laid out byte for byte as tfjs lays them out,
 * uploads by queue writes must give the values tfjs's staging copies gave, and an upload must no
 * longer create a GPU buffer once the pool holds its size.
 */
interface Field {
  type: string;
  data: number[];
}
interface StockBackend {
  makeUniforms(this: unknown, fields: Field[]): unknown;
}

beforeAll(async () => {
  await startWebgpuBackend();
});

/** tfjs's own uniform bytes for `fields`, from its prototype method over a recording stand-in. */
function stockUniformBytes(fields: Field[]): Uint8Array {
  const prototype = Object.getPrototypeOf(tf.backend()) as StockBackend;
  let written: Uint8Array | undefined;
  const standIn = {
    bufferManager: { acquireBuffer: (size: number) => ({ size }) },
    queue: {
      writeBuffer: (_buffer: unknown, _at: number, data: ArrayBuffer, offset: number, size: number) => {
        written = new Uint8Array(data.slice(offset, offset + size));
      },
    },
    uniformPendingDisposal: [] as unknown[],
  };
  prototype.makeUniforms.call(standIn, structuredClone(fields));
  if (written === undefined) throw new Error('tfjs wrote no uniforms');
  return written;
}

/** The bytes our layout gives for the same fields. */
function ourUniformBytes(fields: Field[]): Uint8Array {
  const layout = structLayout(fields);
  const view = new DataView(new ArrayBuffer(layout.size));
  fields.forEach((field, i) => {
    const data = field.data.length === 0 ? [1] : field.data;
    data.forEach((value, k) => {
      const at = (layout.offsets[i] ?? 0) + 4 * k;
      if (field.type === 'float32') view.setFloat32(at, value, true);
      else if (field.type === 'uint32') view.setUint32(at, value, true);
      else view.setInt32(at, value, true);
    });
  });
  return new Uint8Array(view.buffer);
}

describe('webgpu per-op changes', () => {
  it('lays out uniform structs exactly as tfjs does', () => {
    const shapes = (...dims: number[][]) => dims.flatMap((d) => [{ type: 'int32', data: d }]);
    const cases: Field[][] = [
      [
        { type: 'float32', data: [Number.NaN] },
        { type: 'float32', data: [Number.POSITIVE_INFINITY] },
        ...shapes([3], [1]),
      ],
      [{ type: 'float32', data: [Number.NaN] }, ...shapes([2, 3], [3, 1], [4, 5, 6], [30, 6, 1], [1024])],
      [...shapes([1, 2, 3, 4, 5], [120, 60, 20, 5, 1], [7]), { type: 'uint32', data: [9] }],
      [...shapes([1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1], [2, 2]), { type: 'float32', data: [0.5] }],
      [{ type: 'int32', data: [] }, ...shapes([8, 8, 8])],
    ];
    for (const fields of cases) expect(ourUniformBytes(fields)).toEqual(stockUniformBytes(fields));
  });

  it('computes with packed uniforms and written uploads as the cpu backend does', async () => {
    const compute = () =>
      tf.tidy(() => {
        // Tensors above 1,000 elements: tfjs-webgpu runs smaller ops whose inputs are on the CPU there.
        const x = tf.tensor3d(
          Array.from({ length: 4 * 16 * 32 }, (_, i) => Math.sin(i)),
          [4, 16, 32],
        );
        const y = x.transpose([2, 0, 1]).mul(3).add(tf.scalar(0.25)).relu();
        const mask = tf.tensor1d(
          Array.from({ length: 32 }, (_, i) => i % 3 !== 0),
          'bool',
        );
        const picked = tf.where(mask.reshape([32, 1, 1]).tile([1, 4, 16]), y, tf.zerosLike(y));
        const ids = tf.tensor1d([31, 0, 7, 8], 'int32');
        return tf
          .gather(picked, ids)
          .sum(-1)
          .matMul(tf.ones([4, 2]));
      });
    const onGpu = compute();
    const gpuValues = await onGpu.data();
    onGpu.dispose();
    await tf.setBackend('cpu');
    const onCpu = compute();
    const cpuValues = await onCpu.data();
    onCpu.dispose();
    await tf.setBackend('webgpu');
    expect(gpuValues.length).toBe(cpuValues.length);
    const largestDifference = Math.max(
      ...Array.from(gpuValues, (value, i) => Math.abs(value - (cpuValues[i] ?? Number.NaN))),
    );
    expect(largestDifference).toBeLessThan(1e-4);
  });

  it('uploads without creating GPU buffers once the pool holds the size, and leaks no tensors', async () => {
    const device = (tf.backend() as unknown as { device: GPUDevice }).device;
    const before = tf.memory().numTensors;
    const round = async () => {
      const sum = tf.tidy(() => {
        let total = tf.zeros([2048]);
        for (let i = 0; i < 20; i++) total = total.add(tf.tensor1d(new Float32Array(2048).fill(i)));
        return total;
      });
      const values = await sum.data();
      sum.dispose();
      return values;
    };
    await round();
    const createBuffer = device.createBuffer.bind(device);
    let created = 0;
    device.createBuffer = (descriptor) => {
      created++;
      return createBuffer(descriptor);
    };
    try {
      const values = await round();
      expect(values[0]).toBe(190);
      // At most the read-back's staging buffer; tfjs's own uploads create a staging buffer per tensor
      // (2,048 floats: above tfjs's 1,000-element threshold for running small ops on the CPU).
      expect(created).toBeLessThanOrEqual(1);
    } finally {
      device.createBuffer = createBuffer;
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
