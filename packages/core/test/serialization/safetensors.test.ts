import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InterleaveError } from '../../src/errors.js';
import {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensorsFile,
  type TensorRecord,
  writeSafetensorsFile,
} from '../../src/serialization/index.js';

const sample: Record<string, TensorRecord> = {
  'layers.0.mixer.in_proj.weight': { dtype: 'F32', shape: [2, 3], data: new Float32Array([1, -2.5, 0.1, 3e38, -0, 7]) },
  'layers.0.norm.weight': { dtype: 'F64', shape: [4], data: new Float64Array([Math.PI, -1e-300, 0, 1e300]) },
  step: { dtype: 'I64', shape: [], data: new BigInt64Array([123n]) },
  'rng.state': { dtype: 'I64', shape: [3], data: new BigInt64Array([2n ** 63n - 1n, -(2n ** 63n), -1n]) },
  positions: { dtype: 'I32', shape: [2, 2], data: new Int32Array([0, -1, 2 ** 31 - 1, -(2 ** 31)]) },
  deltas: { dtype: 'I8', shape: [3], data: new Int8Array([-128, 0, 127]) },
  tokens: { dtype: 'U8', shape: [1, 1, 3], data: new Uint8Array([0, 128, 255]) },
  mask: { dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) },
  'half.weight': { dtype: 'F16', shape: [4], data: new Float32Array([1, -0.5, 65504, 2 ** -24]) },
  'brain.weight': { dtype: 'BF16', shape: [2], data: new Float32Array([1.5, -(2 ** 127)]) },
  'scalar.loss': { dtype: 'F32', shape: [], data: new Float32Array([0.25]) },
  'empty.bias': { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
  'empty.ids': { dtype: 'U8', shape: [0], data: new Uint8Array(0) },
};

/** Builds a file by hand, for the corruption cases the encoder would never produce. */
function craftFile(header: string, data: ArrayLike<number> = [], declaredHeaderLength?: bigint): Uint8Array {
  const headerBytes = new TextEncoder().encode(header);
  const bytes = new Uint8Array(8 + headerBytes.length + data.length);
  new DataView(bytes.buffer).setBigUint64(0, declaredHeaderLength ?? BigInt(headerBytes.length), true);
  bytes.set(headerBytes, 8);
  bytes.set(data, 8 + headerBytes.length);
  return bytes;
}

function headerText(bytes: Uint8Array): string {
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return new TextDecoder().decode(bytes.subarray(8, 8 + length));
}

describe('encodeSafetensors / decodeSafetensors', () => {
  it('round-trips every dtype, scalars and zero-size tensors', () => {
    const { tensors, metadata } = decodeSafetensors(encodeSafetensors(sample));
    expect(tensors).toEqual(sample);
    expect(metadata).toEqual({});
    expect(Object.keys(tensors)).toEqual(Object.keys(sample).sort());
  });

  it('round-trips metadata', () => {
    const metadata = { format: 'pt', 'config.hash': 'a1b2', note: 'ünïcödé "quoted"\nsecond line' };
    expect(decodeSafetensors(encodeSafetensors(sample, metadata)).metadata).toEqual(metadata);
  });

  it('round-trips an empty file', () => {
    const bytes = encodeSafetensors({});
    expect(headerText(bytes)).toBe('{}      ');
    expect(decodeSafetensors(bytes)).toEqual({ tensors: {}, metadata: {} });
  });

  it('writes the documented layout byte for byte', () => {
    const bytes = encodeSafetensors(
      {
        b: { dtype: 'U8', shape: [3], data: new Uint8Array([7, 8, 9]) },
        a: { dtype: 'F32', shape: [2], data: new Float32Array([1, -2]) },
        c: { dtype: 'I64', shape: [1], data: new BigInt64Array([5n]) },
      },
      { format: 'pt' },
    );
    const json =
      '{"__metadata__":{"format":"pt"},' +
      '"c":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},' +
      '"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},' +
      '"b":{"dtype":"U8","shape":[3],"data_offsets":[16,19]}}';
    const paddedLength = Math.ceil(json.length / 8) * 8;
    const view = new DataView(bytes.buffer, bytes.byteOffset);

    expect(view.getBigUint64(0, true)).toBe(BigInt(paddedLength));
    expect((8 + paddedLength) % 8).toBe(0);
    expect(headerText(bytes)).toBe(json.padEnd(paddedLength, ' '));
    expect(bytes.length).toBe(8 + paddedLength + 19);

    const data = bytes.subarray(8 + paddedLength);
    expect([...data.subarray(0, 8)]).toEqual([5, 0, 0, 0, 0, 0, 0, 0]);
    expect([...data.subarray(8, 16)]).toEqual([0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0]);
    expect([...data.subarray(16)]).toEqual([7, 8, 9]);
  });

  it('is deterministic whatever the key order, and keeps integer-like names in packing order', () => {
    const reversed = Object.fromEntries(Object.entries(sample).reverse());
    expect(encodeSafetensors(reversed, { b: '2', a: '1' })).toEqual(encodeSafetensors(sample, { a: '1', b: '2' }));

    const numbered = encodeSafetensors({
      z: { dtype: 'F32', shape: [1], data: new Float32Array([1]) },
      '0': { dtype: 'U8', shape: [1], data: new Uint8Array([1]) },
    });
    expect(headerText(numbered).indexOf('"z"')).toBeLessThan(headerText(numbered).indexOf('"0"'));
  });

  it('returns copies that are aligned and independent of the input buffer', () => {
    const encoded = encodeSafetensors(sample);
    // Shift the file by one byte so every tensor's data sits at an odd address in the input.
    const shifted = new Uint8Array(encoded.length + 1);
    shifted.set(encoded, 1);
    const input = shifted.subarray(1);
    const { tensors } = decodeSafetensors(input);
    expect(tensors).toEqual(sample);
    for (const tensor of Object.values(tensors)) {
      expect(tensor.data.buffer).not.toBe(shifted.buffer);
      expect(tensor.data.byteOffset).toBe(0);
    }
    input.fill(0);
    expect(tensors).toEqual(sample);
  });

  it('keeps names that are special to JavaScript objects as plain keys', () => {
    const tensors: Record<string, TensorRecord> = Object.fromEntries([
      ['__proto__', { dtype: 'U8', shape: [1], data: new Uint8Array([1]) }],
      ['constructor', { dtype: 'U8', shape: [1], data: new Uint8Array([2]) }],
    ]);
    const decoded = decodeSafetensors(encodeSafetensors(tensors, Object.fromEntries([['__proto__', 'x']])));
    expect(Object.getPrototypeOf(decoded.tensors)).toBe(Object.prototype);
    expect(Object.keys(decoded.tensors)).toEqual(['__proto__', 'constructor']);
    expect(Object.getOwnPropertyDescriptor(decoded.tensors, '__proto__')?.value).toEqual({
      dtype: 'U8',
      shape: [1],
      data: new Uint8Array([1]),
    });
    expect(Object.getOwnPropertyDescriptor(decoded.metadata, '__proto__')?.value).toBe('x');
  });

  it('accepts a Node Buffer', () => {
    expect(decodeSafetensors(Buffer.from(encodeSafetensors(sample))).tensors).toEqual(sample);
  });

  it('rounds F16 and BF16 to nearest even on write', () => {
    const values = new Float32Array([1 / 3, 65520, 65519, 2 ** -25, 3 * 2 ** -26, Number.NaN, -0, 1 + 2 ** -11]);
    const written = {
      half: { dtype: 'F16' as const, shape: [values.length], data: values },
      brain: { dtype: 'BF16' as const, shape: [3], data: new Float32Array([1 / 3, 1 + 2 ** -8, 1 + 3 * 2 ** -8]) },
    };
    const { tensors } = decodeSafetensors(encodeSafetensors(written));
    expect([...tensors.half!.data]).toEqual([
      0.333251953125,
      Number.POSITIVE_INFINITY,
      65504,
      0,
      2 ** -24,
      Number.NaN,
      -0,
      1,
    ]);
    expect([...tensors.brain!.data]).toEqual([0.333984375, 1, 1 + 2 ** -6]);
  });

  it('reads F16 and BF16 bits written by others, including subnormals and infinities', () => {
    const f16Bits = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x7c00, 0xfc00, 0x8000, 0x7e00];
    const bf16Bits = [0x3f80, 0xc040, 0x7f80, 0x0001];
    const data = new Uint8Array(new Uint16Array([...f16Bits, ...bf16Bits]).buffer);
    const file = craftFile(
      '{"h":{"dtype":"F16","shape":[9],"data_offsets":[0,18]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[18,26]}}',
      data,
    );
    const { tensors } = decodeSafetensors(file);
    expect([...tensors.h!.data]).toEqual([
      1,
      -2,
      65504,
      2 ** -24,
      1023 * 2 ** -24,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      -0,
      Number.NaN,
    ]);
    expect([...tensors.b!.data]).toEqual([1, -3, Number.POSITIVE_INFINITY, 2 ** -133]);
  });

  it('reads files whose header is not padded and whose tensors are in any order', () => {
    const file = craftFile(
      '{"second":{"dtype":"U8","shape":[1],"data_offsets":[4,5]},"first":{"dtype":"I32","shape":[],"data_offsets":[0,4]}}',
      [1, 0, 0, 0, 9],
    );
    expect(decodeSafetensors(file).tensors).toEqual({
      first: { dtype: 'I32', shape: [], data: new Int32Array([1]) },
      second: { dtype: 'U8', shape: [1], data: new Uint8Array([9]) },
    });
  });
});

describe('encodeSafetensors rejects inconsistent tensors', () => {
  const f32 = (shape: number[], length: number): TensorRecord => ({
    dtype: 'F32',
    shape,
    data: new Float32Array(length),
  });
  const cases: [string, Record<string, TensorRecord>, Record<string, string> | undefined, RegExp][] = [
    ['shape/data mismatch', { w: f32([2, 3], 5) }, undefined, /tensor "w" has shape \[2,3\] \(6 elements\) but 5 data/],
    ['scalar with no element', { w: f32([], 0) }, undefined, /tensor "w" has shape \[\] \(1 elements\) but 0 data/],
    ['empty name', { '': f32([1], 1) }, undefined, /a tensor has an empty name/],
    ['reserved name', { __metadata__: f32([1], 1) }, undefined, /cannot be named __metadata__/],
    ['negative dimension', { w: f32([-1], 0) }, undefined, /tensor "w" has shape \[-1\], not an array of non-negative/],
    ['fractional dimension', { w: f32([1.5], 1) }, undefined, /has shape \[1.5\]/],
    [
      'wrong array type',
      { w: { dtype: 'I64', shape: [1], data: new Int32Array(1) } },
      undefined,
      /tensor "w" has dtype I64, which needs a BigInt64Array, but its data is a Int32Array/,
    ],
    [
      'unknown dtype',
      { w: { dtype: 'U16', shape: [1], data: new Uint8Array(2) } as unknown as TensorRecord },
      undefined,
      /tensor "w" has unsupported dtype "U16"/,
    ],
    [
      'BOOL other than 0/1',
      { m: { dtype: 'BOOL', shape: [2], data: new Uint8Array([1, 2]) } },
      undefined,
      /tensor "m" is BOOL but element 1 is 2/,
    ],
    [
      'non-string metadata',
      { w: f32([1], 1) },
      { step: 3 } as unknown as Record<string, string>,
      /metadata "step" is a number, not a string/,
    ],
  ];
  it.each(cases)('%s', (_, tensors, metadata, message) => {
    expect(() => encodeSafetensors(tensors, metadata)).toThrow(message);
  });
});

describe('decodeSafetensors rejects corrupt files with a one-line InterleaveError', () => {
  const tensor = (dtype: string, shape: unknown, offsets: unknown) =>
    JSON.stringify({ dtype, shape, data_offsets: offsets });
  const cases: [string, Uint8Array, RegExp][] = [
    ['too short', new Uint8Array(5), /5 bytes is too short to hold the 8-byte header length/],
    [
      'header length past the end',
      craftFile('{}', [], 1000n),
      /header length 1000 is more than the 2 bytes that follow it \(truncated/,
    ],
    [
      'header length beyond u53',
      craftFile('{}', [], 2n ** 64n - 1n),
      /header length 18446744073709551615 is more than the 2 bytes/,
    ],
    ['invalid UTF-8', craftFile('{"a":1}').map((byte, index) => (index === 10 ? 0xff : byte)), /not valid UTF-8/],
    ['invalid JSON', craftFile('{"a": '), /header is not valid JSON \(/],
    ['byte-order mark', craftFile('\uFEFF{}'), /header is not valid JSON/],
    ['JSON array', craftFile('[1, 2]'), /header is \[1,2\], not a JSON object/],
    ['metadata not an object', craftFile('{"__metadata__": "x"}'), /__metadata__ is "x", not an object/],
    [
      'metadata value not a string',
      craftFile('{"__metadata__": {"step": 3}}'),
      /__metadata__ "step" is 3, not a string/,
    ],
    ['entry not an object', craftFile('{"w": 5}'), /tensor "w" is 5, not an object with dtype, shape and data_offsets/],
    [
      'unknown dtype',
      craftFile(`{"w": ${tensor('U16', [1], [0, 2])}}`, [0, 0]),
      /tensor "w" has unsupported dtype "U16" \(supported: /,
    ],
    [
      'missing dtype',
      craftFile('{"w": {"shape": [], "data_offsets": [0, 4]}}', [0, 0, 0, 0]),
      /unsupported dtype missing/,
    ],
    ['negative shape', craftFile(`{"w": ${tensor('F32', [-1], [0, 0])}}`), /tensor "w" has shape \[-1\], not an array/],
    ['shape not an array', craftFile(`{"w": ${tensor('F32', 4, [0, 16])}}`), /tensor "w" has shape 4, not an array/],
    [
      'offsets reversed',
      craftFile(`{"w": ${tensor('U8', [0], [4, 0])}}`),
      /tensor "w" has data_offsets \[4,0\], not \[begin, end\]/,
    ],
    ['offsets not a pair', craftFile(`{"w": ${tensor('U8', [1], [0])}}`), /tensor "w" has data_offsets \[0\]/],
    [
      'size disagrees with shape',
      craftFile(`{"w": ${tensor('F32', [2], [0, 4])}}`, [0, 0, 0, 0]),
      /tensor "w" has shape \[2\] of F32 \(8 bytes\) but data_offsets \[0, 4\] span 4 bytes/,
    ],
    [
      'offsets past the end',
      craftFile(`{"w": ${tensor('F32', [2], [0, 8])}}`, [0, 0, 0, 0]),
      /tensor "w" has data_offsets \[0, 8\] past the end of the 4-byte data section/,
    ],
    [
      'gap between tensors',
      craftFile(`{"a": ${tensor('U8', [1], [0, 1])}, "b": ${tensor('U8', [1], [2, 3])}}`, [1, 2, 3]),
      /1 unused bytes before tensor "b" at data_offsets \[2, 3\]/,
    ],
    ['gap at the start', craftFile(`{"a": ${tensor('U8', [1], [1, 2])}}`, [1, 2]), /1 unused bytes before tensor "a"/],
    [
      'overlapping tensors',
      craftFile(`{"a": ${tensor('U8', [2], [0, 2])}, "b": ${tensor('U8', [2], [1, 3])}}`, [1, 2, 3]),
      /tensor "b" has data_offsets \[1, 3\] overlapping tensor "a"/,
    ],
    [
      'zero-size tensor inside another',
      craftFile(`{"a": ${tensor('U8', [2], [0, 2])}, "b": ${tensor('U8', [0], [1, 1])}}`, [1, 2]),
      /tensor "b" has data_offsets \[1, 1\] overlapping tensor "a"/,
    ],
    [
      'trailing bytes',
      craftFile(`{"a": ${tensor('U8', [1], [0, 1])}}`, [1, 2, 3]),
      /the last 2 bytes of the data section belong to no tensor/,
    ],
    ['data without tensors', craftFile('{}', [1]), /the last 1 bytes of the data section belong to no tensor/],
    [
      'shape too large to count',
      craftFile(`{"w": ${tensor('F64', [2 ** 40, 2 ** 40], [0, 8])}}`, new Uint8Array(8)),
      /tensor "w" has shape \[1099511627776,1099511627776\], which is too large/,
    ],
    [
      'header over the reference size limit',
      craftFile('{}', new Uint8Array(100_000_000), 100_000_001n),
      /header length 100000001 is over the 100000000-byte limit/,
    ],
    [
      'BOOL byte other than 0/1',
      craftFile(`{"m": ${tensor('BOOL', [2], [0, 2])}}`, [0, 7]),
      /tensor "m" is BOOL but element 1 is 7, not 0 or 1/,
    ],
    [
      'name with a newline stays on one line',
      craftFile(`{"a\\nb": ${tensor('U8', [1], [0, 2])}}`, [1, 2]),
      /tensor "a\\nb" has shape/,
    ],
  ];
  it.each(cases)('%s', (_, bytes, message) => {
    let thrown: unknown;
    try {
      decodeSafetensors(bytes);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InterleaveError);
    const text = (thrown as Error).message;
    expect(text).toMatch(/^invalid safetensors data: /);
    expect(text).toMatch(message);
    expect(text).not.toContain('\n');
  });
});

describe('safetensors files', () => {
  let folder: string;
  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'interleave-safetensors-'));
  });
  afterAll(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('writes atomically and reads back', async () => {
    const path = join(folder, 'nested', 'model.safetensors');
    await writeSafetensorsFile(path, sample, { format: 'pt' });
    expect(await readSafetensorsFile(path)).toEqual({ tensors: sample, metadata: { format: 'pt' } });
    expect(new Uint8Array(await readFile(path))).toEqual(encodeSafetensors(sample, { format: 'pt' }));
  });

  it('names the file when it is corrupt', async () => {
    const path = join(folder, 'corrupt.safetensors');
    await writeFile(path, craftFile('{"a": 1'));
    await expect(readSafetensorsFile(path)).rejects.toThrow(
      new InterleaveError(`invalid safetensors file ${path}: header is not valid JSON (${jsonErrorFor('{"a": 1')})`),
    );
  });

  it('names the file when it is missing', async () => {
    const path = join(folder, 'missing.safetensors');
    await expect(readSafetensorsFile(path)).rejects.toThrow(
      new InterleaveError(`cannot read safetensors file ${path}: no such file`),
    );
    await expect(readSafetensorsFile(folder)).rejects.toThrow(/cannot read safetensors file .*: it is a directory/);
  });
});

function jsonErrorFor(text: string): string {
  try {
    JSON.parse(text);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected invalid JSON');
}
