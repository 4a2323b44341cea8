// The safetensors checkpoint format (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length N, N bytes of JSON header, then the raw little-endian tensor data.
// No npm package fits (the `safetensors` name on npm is an empty 0.0.1 placeholder and
// @huggingface/hub only parses headers of remote files), so this is a small implementation that
// follows the reference Rust writer byte for byte and validates like its reader.

import { readFile } from 'node:fs/promises';
import { InterleaveError } from '../errors.js';
import { writeFileAtomic } from '../io/atomic-write.js';
import {
  assertLittleEndianHost,
  dtypeCodecs,
  dtypePackingRank,
  isSafetensorsDtype,
  type SafetensorsDtype,
  type TypedArray,
} from './safetensors-dtypes.js';

export type { SafetensorsDtype, TypedArray } from './safetensors-dtypes.js';

/**
 * One tensor as stored in a safetensors file. `data` holds the elements in row-major order in the
 * typed array of its dtype: F64 Float64Array, F32/F16/BF16 Float32Array (F16 and BF16 are widened
 * on read and rounded to nearest-even on write), I64 BigInt64Array, I32 Int32Array, I8 Int8Array,
 * U8 Uint8Array, BOOL Uint8Array of 0s and 1s. A scalar has shape `[]` and one element.
 */
export interface TensorRecord {
  dtype: SafetensorsDtype;
  shape: number[];
  data: TypedArray;
}

export interface SafetensorsContents {
  tensors: Record<string, TensorRecord>;
  metadata: Record<string, string>;
}

const LENGTH_PREFIX_BYTES = 8;
const HEADER_ALIGNMENT = 8;
/** Readers built on the reference implementation refuse headers larger than this. */
const MAX_HEADER_BYTES = 100_000_000;
const METADATA_KEY = '__metadata__';
const SPACE = 0x20;

/**
 * Encodes tensors as a safetensors file. The output depends only on the tensors and metadata, not
 * on the order of their keys, and is byte-identical to what Python's `safetensors` writes for the
 * same tensors. Throws on a tensor whose shape, dtype and data disagree (a caller bug).
 */
export function encodeSafetensors(
  tensors: Record<string, TensorRecord>,
  metadata: Record<string, string> = {},
): Uint8Array {
  assertLittleEndianHost();
  const entries = Object.entries(tensors).map(([name, tensor]) => ({
    name,
    tensor,
    byteLength: checkTensorForEncoding(name, tensor),
  }));
  entries.sort(
    (a, b) => dtypePackingRank[b.tensor.dtype] - dtypePackingRank[a.tensor.dtype] || compareUtf8(a.name, b.name),
  );

  // The header is assembled by hand because JSON.stringify would move integer-like keys (a tensor
  // named "0") to the front, breaking both determinism and the match with the reference writer.
  const headerFields: string[] = [];
  const metadataEntries = checkMetadataForEncoding(metadata);
  if (metadataEntries.length > 0) headerFields.push(`"${METADATA_KEY}":${jsonObject(metadataEntries)}`);
  let dataLength = 0;
  for (const { name, tensor, byteLength } of entries) {
    const info = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: [dataLength, dataLength + byteLength] };
    headerFields.push(`${JSON.stringify(name)}:${JSON.stringify(info)}`);
    dataLength += byteLength;
  }
  const header = padHeader(new TextEncoder().encode(`{${headerFields.join(',')}}`));
  if (header.length > MAX_HEADER_BYTES) {
    throw new Error(
      `cannot encode safetensors: the ${header.length}-byte header is over the ${MAX_HEADER_BYTES}-byte limit`,
    );
  }

  const bytes = new Uint8Array(LENGTH_PREFIX_BYTES + header.length + dataLength);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
  bytes.set(header, LENGTH_PREFIX_BYTES);
  let position = LENGTH_PREFIX_BYTES + header.length;
  for (const { tensor, byteLength } of entries) {
    dtypeCodecs[tensor.dtype].write(tensor.data, bytes.subarray(position, position + byteLength));
    position += byteLength;
  }
  return bytes;
}

/** Returns the tensor's size in bytes in the file. */
function checkTensorForEncoding(name: string, tensor: TensorRecord): number {
  const fail = (reason: string): never => {
    throw new Error(
      `cannot encode safetensors: ${name === '' ? 'a tensor' : `tensor ${JSON.stringify(name)}`} ${reason}`,
    );
  };
  if (name === '') fail('has an empty name');
  if (name === METADATA_KEY) fail(`cannot be named ${METADATA_KEY}, which the format reserves`);
  if (!isSafetensorsDtype(tensor.dtype)) fail(`has unsupported dtype ${JSON.stringify(tensor.dtype)}`);
  if (!isShape(tensor.shape)) fail(`has shape ${JSON.stringify(tensor.shape)}, not an array of non-negative integers`);
  const codec = dtypeCodecs[tensor.dtype];
  if (!codec.holds(tensor.data)) {
    fail(
      `has dtype ${tensor.dtype}, which needs a ${codec.arrayName}, but its data is a ${describeValue(tensor.data)}`,
    );
  }
  const elements = elementCount(tensor.shape);
  if (elements !== tensor.data.length) {
    fail(`has shape ${JSON.stringify(tensor.shape)} (${elements} elements) but ${tensor.data.length} data elements`);
  }
  if (tensor.dtype === 'BOOL') {
    const index = indexOfNonBoolean(tensor.data as Uint8Array);
    if (index >= 0) fail(`is BOOL but element ${index} is ${tensor.data[index]}, not 0 or 1`);
  }
  return elements * codec.bytesPerElement;
}

function checkMetadataForEncoding(metadata: Record<string, string>): [string, string][] {
  const entries = Object.entries(metadata);
  for (const [key, value] of entries) {
    if (typeof value !== 'string') {
      throw new Error(`cannot encode safetensors: metadata ${JSON.stringify(key)} is a ${typeof value}, not a string`);
    }
  }
  return entries.sort(([a], [b]) => compareUtf8(a, b));
}

function jsonObject(entries: [string, string][]): string {
  return `{${entries.map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`).join(',')}}`;
}

/** Pads with spaces (valid trailing JSON whitespace) so the tensor data starts 8-byte aligned. */
function padHeader(header: Uint8Array): Uint8Array {
  const paddedLength = Math.ceil(header.length / HEADER_ALIGNMENT) * HEADER_ALIGNMENT;
  const padded = new Uint8Array(paddedLength).fill(SPACE);
  padded.set(header);
  return padded;
}

/**
 * Decodes a safetensors file held in memory. Every returned array is a fresh copy, so it is
 * aligned for its type and unaffected by later changes to `bytes`. Throws an InterleaveError
 * naming the problem on anything malformed.
 */
export function decodeSafetensors(bytes: Uint8Array): SafetensorsContents {
  return decodeWithContext(bytes, 'invalid safetensors data');
}

function decodeWithContext(bytes: Uint8Array, context: string): SafetensorsContents {
  assertLittleEndianHost();
  const fail = (reason: string): never => {
    throw new InterleaveError(`${context}: ${reason}`);
  };

  if (bytes.length < LENGTH_PREFIX_BYTES) {
    fail(`${bytes.length} bytes is too short to hold the 8-byte header length`);
  }
  const declaredHeaderLength = new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true);
  const bytesAfterPrefix = bytes.length - LENGTH_PREFIX_BYTES;
  if (declaredHeaderLength > BigInt(bytesAfterPrefix)) {
    fail(
      `header length ${declaredHeaderLength} is more than the ${bytesAfterPrefix} bytes that follow it (truncated, or not a safetensors file)`,
    );
  }
  const headerLength = Number(declaredHeaderLength);
  if (headerLength > MAX_HEADER_BYTES) fail(`header length ${headerLength} is over the ${MAX_HEADER_BYTES}-byte limit`);
  const dataStart = LENGTH_PREFIX_BYTES + headerLength;
  const data = bytes.subarray(dataStart);

  const header = parseHeaderJson(bytes.subarray(LENGTH_PREFIX_BYTES, dataStart), fail);
  const metadata = Object.hasOwn(header, METADATA_KEY) ? parseMetadata(header[METADATA_KEY], fail) : {};
  const layouts = Object.entries(header)
    .filter(([name]) => name !== METADATA_KEY)
    .map(([name, entry]) => parseTensorEntry(name, entry, fail));
  checkPacking(layouts, data.length, fail);

  layouts.sort((a, b) => compareUtf8(a.name, b.name));
  const tensors = Object.fromEntries(
    layouts.map((layout) => [layout.name, readTensor(layout, data.subarray(layout.begin, layout.end), fail)]),
  );
  return { tensors, metadata };
}

type Fail = (reason: string) => never;

interface TensorLayout {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

function parseHeaderJson(headerBytes: Uint8Array, fail: Fail): Record<string, unknown> {
  let text: string;
  try {
    // ignoreBOM keeps a byte-order mark in the text so that JSON.parse rejects it, as the reference does.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    return fail('header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (error) {
    return fail(`header is not valid JSON (${(error as Error).message.replaceAll('\n', ' ')})`);
  }
  if (!isPlainObject(header)) return fail(`header is ${describeJson(header)}, not a JSON object`);
  return header;
}

function parseMetadata(metadata: unknown, fail: Fail): Record<string, string> {
  if (!isPlainObject(metadata)) return fail(`${METADATA_KEY} is ${describeJson(metadata)}, not an object`);
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string') {
      fail(`${METADATA_KEY} ${JSON.stringify(key)} is ${describeJson(value)}, not a string`);
    }
  }
  return metadata as Record<string, string>;
}

function parseTensorEntry(name: string, entry: unknown, fail: Fail): TensorLayout {
  const failFor = (reason: string): never => fail(`tensor ${JSON.stringify(name)} ${reason}`);
  if (!isPlainObject(entry)) {
    return failFor(`is ${describeJson(entry)}, not an object with dtype, shape and data_offsets`);
  }
  const { dtype, shape, data_offsets: offsets } = entry;
  if (!isSafetensorsDtype(dtype)) {
    return failFor(`has unsupported dtype ${describeJson(dtype)} (supported: ${Object.keys(dtypeCodecs).join(', ')})`);
  }
  if (!isShape(shape)) return failFor(`has shape ${describeJson(shape)}, not an array of non-negative integers`);
  if (!isOffsetPair(offsets)) {
    return failFor(`has data_offsets ${describeJson(offsets)}, not [begin, end] with 0 <= begin <= end`);
  }
  const [begin, end] = offsets;
  const expectedBytes = elementCount(shape) * dtypeCodecs[dtype].bytesPerElement;
  if (!Number.isSafeInteger(expectedBytes)) return failFor(`has shape ${JSON.stringify(shape)}, which is too large`);
  if (end - begin !== expectedBytes) {
    failFor(
      `has shape ${JSON.stringify(shape)} of ${dtype} (${expectedBytes} bytes) but data_offsets [${begin}, ${end}] span ${end - begin} bytes`,
    );
  }
  return { name, dtype, shape, begin, end };
}

/** The data section must be exactly the tensors laid end to end, like the reference reader demands. */
function checkPacking(layouts: TensorLayout[], dataLength: number, fail: Fail): void {
  for (const { name, begin, end } of layouts) {
    if (end > dataLength) {
      fail(
        `tensor ${JSON.stringify(name)} has data_offsets [${begin}, ${end}] past the end of the ${dataLength}-byte data section (truncated file?)`,
      );
    }
  }
  const byOffset = [...layouts].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let packedUpTo = 0;
  let lastNonEmpty = '';
  for (const { name, begin, end } of byOffset) {
    if (begin < packedUpTo) {
      fail(
        `tensor ${JSON.stringify(name)} has data_offsets [${begin}, ${end}] overlapping tensor ${JSON.stringify(lastNonEmpty)}`,
      );
    }
    if (begin > packedUpTo) {
      fail(
        `${begin - packedUpTo} unused bytes before tensor ${JSON.stringify(name)} at data_offsets [${begin}, ${end}] (tensors must be packed back to back from offset 0)`,
      );
    }
    if (end > begin) lastNonEmpty = name;
    packedUpTo = end;
  }
  if (packedUpTo < dataLength) {
    fail(`the last ${dataLength - packedUpTo} bytes of the data section belong to no tensor`);
  }
}

function readTensor(layout: TensorLayout, source: Uint8Array, fail: Fail): TensorRecord {
  const data = dtypeCodecs[layout.dtype].read(source);
  if (layout.dtype === 'BOOL') {
    const index = indexOfNonBoolean(data as Uint8Array);
    if (index >= 0) {
      fail(`tensor ${JSON.stringify(layout.name)} is BOOL but element ${index} is ${data[index]}, not 0 or 1`);
    }
  }
  return { dtype: layout.dtype, shape: [...layout.shape], data };
}

/** Writes the tensors atomically: a crash mid-write leaves the previous file (or none), never half of one. */
export async function writeSafetensorsFile(
  path: string,
  tensors: Record<string, TensorRecord>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

export async function readSafetensorsFile(path: string): Promise<SafetensorsContents> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === undefined) throw error;
    throw new InterleaveError(`cannot read safetensors file ${path}: ${fileErrorReasons[code] ?? code}`, {
      cause: error,
    });
  }
  return decodeWithContext(bytes, `invalid safetensors file ${path}`);
}

const fileErrorReasons: Record<string, string> = {
  ENOENT: 'no such file',
  EISDIR: 'it is a directory',
  EACCES: 'permission denied',
  ERR_FS_FILE_TOO_LARGE: 'the file is too large to read into memory',
};

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function isShape(value: unknown): value is number[] {
  return Array.isArray(value) && value.every(isCount);
}

function isOffsetPair(value: unknown): value is [number, number] {
  return Array.isArray(value) && value.length === 2 && isCount(value[0]) && isCount(value[1]) && value[0] <= value[1];
}

function elementCount(shape: number[]): number {
  return shape.reduce((product, dimension) => product * dimension, 1);
}

function indexOfNonBoolean(data: Uint8Array): number {
  return data.findIndex((value) => value > 1);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Orders names as the reference writer does (by UTF-8 bytes), which differs from `<` only past U+FFFF. */
function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** A short one-line description of a parsed JSON value for error messages. */
function describeJson(value: unknown): string {
  if (value === undefined) return 'missing';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  return (value as object).constructor?.name ?? typeof value;
}
