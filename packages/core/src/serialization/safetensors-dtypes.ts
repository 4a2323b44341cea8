import {
  bfloat16BitsFromNumber,
  float16BitsFromNumber,
  numberFromBfloat16Bits,
  numberFromFloat16Bits,
} from './half-precision.js';

/** The safetensors element types Interleave reads and writes (the names are the format's own). */
export type SafetensorsDtype = 'F32' | 'F64' | 'F16' | 'BF16' | 'I32' | 'I64' | 'I8' | 'U8' | 'BOOL';

export type TypedArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Int8Array | Uint8Array;

/** How one dtype is laid out in a file and which typed array holds it in memory. */
interface DtypeCodec {
  bytesPerElement: number;
  arrayName: string;
  holds(data: TypedArray): boolean;
  /** Writes `data` as raw little-endian elements into `target` (exactly `data.length` elements long). */
  write(data: TypedArray, target: Uint8Array): void;
  /** Reads raw little-endian elements into a fresh array that shares no memory with `source`. */
  read(source: Uint8Array): TypedArray;
}

// The codecs below copy bytes as they are, which is only the file's little-endian layout when
// the host is little-endian too. Every platform Node ships for is, but fail loudly if not.
const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function assertLittleEndianHost(): void {
  if (!hostIsLittleEndian) throw new Error('safetensors support needs a little-endian host');
}

function bytesOf(data: TypedArray): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** `new Uint8Array(view)` copies into a new buffer at offset 0, so the result is aligned and unshared. */
function alignedCopy(source: Uint8Array): ArrayBuffer {
  return new Uint8Array(source).buffer;
}

function nativeCodec(
  bytesPerElement: number,
  ArrayType: { new (buffer: ArrayBuffer): TypedArray; name: string },
): DtypeCodec {
  return {
    bytesPerElement,
    arrayName: ArrayType.name,
    holds: (data) => data instanceof ArrayType,
    write: (data, target) => target.set(bytesOf(data)),
    read: (source) => new ArrayType(alignedCopy(source)),
  };
}

// F16 and BF16 have no typed array in Node 20; they are widened to Float32Array on read and
// rounded (to nearest, ties to even) from Float32Array on write.
function halfCodec(toBits: (value: number) => number, fromBits: (bits: number) => number): DtypeCodec {
  return {
    bytesPerElement: 2,
    arrayName: 'Float32Array',
    holds: (data) => data instanceof Float32Array,
    write: (data, target) => {
      const view = new DataView(target.buffer, target.byteOffset, target.byteLength);
      for (let index = 0; index < data.length; index++) view.setUint16(index * 2, toBits(data[index] as number), true);
    },
    read: (source) => {
      const view = new DataView(source.buffer, source.byteOffset, source.byteLength);
      const values = new Float32Array(source.byteLength / 2);
      for (let index = 0; index < values.length; index++) values[index] = fromBits(view.getUint16(index * 2, true));
      return values;
    },
  };
}

export const dtypeCodecs: Readonly<Record<SafetensorsDtype, DtypeCodec>> = {
  F64: nativeCodec(8, Float64Array),
  F32: nativeCodec(4, Float32Array),
  F16: halfCodec(float16BitsFromNumber, numberFromFloat16Bits),
  BF16: halfCodec(bfloat16BitsFromNumber, numberFromBfloat16Bits),
  I64: nativeCodec(8, BigInt64Array),
  I32: nativeCodec(4, Int32Array),
  I8: nativeCodec(1, Int8Array),
  U8: nativeCodec(1, Uint8Array),
  // numpy and PyTorch store a bool as one byte holding 0 or 1.
  BOOL: nativeCodec(1, Uint8Array),
};

export function isSafetensorsDtype(name: unknown): name is SafetensorsDtype {
  return typeof name === 'string' && Object.hasOwn(dtypeCodecs, name);
}

/**
 * The order the reference (Rust) writer packs tensors in: widest alignment first, so that each
 * tensor's data starts at a multiple of its element size and can be viewed in place. Matching it
 * also makes our files byte-identical to the reference writer's for the same tensors.
 */
export const dtypePackingRank: Readonly<Record<SafetensorsDtype, number>> = {
  I64: 8,
  F64: 7,
  F32: 6,
  I32: 5,
  BF16: 4,
  F16: 3,
  I8: 2,
  U8: 1,
  BOOL: 0,
};
