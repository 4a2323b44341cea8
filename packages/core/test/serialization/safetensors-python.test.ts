// Checks our safetensors files against the reference implementation: Python's `safetensors`
// package reads what we write and we read what it writes. The venv is created on first use
// (pip needs the package registry) and reused afterwards; if it cannot be made the test fails.

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decodeSafetensors,
  readSafetensorsFile,
  type TensorRecord,
  writeSafetensorsFile,
} from '../../src/serialization/index.js';
import { ensurePythonVenv, runCommand } from '../support/python-venv.js';

const requirements = ['safetensors==0.8.0', 'numpy==2.4.6'];

// Python prints every tensor as {dtype, shape, values} in JSON; ints become strings (int64 does
// not fit a JS number) and non-finite floats become the strings JS's Number() understands.
const pythonScript = `
import json, sys
import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

def plain(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return value

def describe(tensors):
    return {
        name: {"dtype": str(a.dtype), "shape": list(a.shape), "values": [plain(v) for v in a.reshape(-1).tolist()]}
        for name, a in tensors.items()
    }

mode, path = sys.argv[1], sys.argv[2]
extra = {}
if mode == "write":
    tensors = {
        "f32": np.array([[1.5, -2.25, 0.1], [np.inf, -np.inf, np.nan]], dtype=np.float32),
        "f64": np.array([np.pi, -0.0, 1e-310], dtype=np.float64),
        "f16": np.array([1 / 3, 65504, 6e-8, -0.0], dtype=np.float16),
        "i64": np.array([2**63 - 1, -(2**63), 0], dtype=np.int64),
        "i32": np.arange(-3, 3, dtype=np.int32).reshape(2, 3),
        "i8": np.array([-128, 127], dtype=np.int8),
        "u8": np.array([[0], [255]], dtype=np.uint8),
        "bool": np.array([True, False, True]),
        "scalar": np.array(2.5, dtype=np.float32),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "0": np.array([7], dtype=np.int32),
    }
    save_file(tensors, path, metadata={"format": "np"})
else:
    tensors = load_file(path)
    with np.errstate(over="ignore"):
        extra["numpy_f16"] = [plain(v) for v in tensors["rounding.source"].astype(np.float16).tolist()]
with safe_open(path, framework="np") as f:
    metadata = f.metadata() or {}
print(json.dumps({"tensors": describe(tensors), "metadata": metadata, **extra}))
`;

interface PythonTensor {
  dtype: string;
  shape: number[];
  values: (number | string | boolean)[];
}
interface PythonView {
  tensors: Record<string, PythonTensor>;
  metadata: Record<string, string>;
  numpy_f16?: (number | string)[];
}

const numpyDtypes: Record<TensorRecord['dtype'], string> = {
  F64: 'float64',
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  I64: 'int64',
  I32: 'int32',
  I8: 'int8',
  U8: 'uint8',
  BOOL: 'bool',
};

function plainNumber(value: number): number | string {
  return Number.isFinite(value) ? value : String(value);
}

/** Our tensors in the same form as Python's description. */
function describeLikePython(tensors: Record<string, TensorRecord>): Record<string, PythonTensor> {
  const isInteger = (dtype: string) => dtype.startsWith('I') || dtype === 'U8';
  return Object.fromEntries(
    Object.entries(tensors).map(([name, { dtype, shape, data }]) => [
      name,
      {
        dtype: numpyDtypes[dtype],
        shape,
        values: Array.from(data as ArrayLike<number | bigint>, (value) =>
          dtype === 'BOOL' ? value === 1 : isInteger(dtype) ? String(value) : plainNumber(value as number),
        ),
      },
    ]),
  );
}

/** Float32 values over the whole F16 range and beyond, with ties and subnormals, from a fixed seed. */
function roundingProbe(): Float32Array {
  const bits = new Uint32Array(4000);
  let state = 12345;
  for (let index = 0; index < bits.length; index++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    const exponent = 127 - 28 + (state % 46); // 2^-28 .. 2^17
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    const mantissa = index % 3 === 0 ? (state & 0x7fe000) | 0x1000 : state & 0x7fffff; // every third is a tie
    bits[index] = ((index & 1) << 31) | (exponent << 23) | mantissa;
  }
  const edges = [0, -0, 65504, 65519, 65520, 1e9, Number.NaN, Number.POSITIVE_INFINITY, 2 ** -24, 2 ** -25, 2 ** -26];
  return new Float32Array([...new Float32Array(bits.buffer), ...edges]);
}

describe('interoperability with Python safetensors', () => {
  let python: string;
  let folder: string;

  beforeAll(async () => {
    python = (await ensurePythonVenv('safetensors', requirements)).python;
    folder = await mkdtemp(join(tmpdir(), 'interleave-safetensors-python-'));
  });
  afterAll(async () => {
    if (folder) await rm(folder, { recursive: true, force: true });
  });

  async function runPython(mode: 'read' | 'write', path: string): Promise<PythonView> {
    const { code, stdout, stderr } = await runCommand(python, ['-c', pythonScript, mode, path]);
    if (code !== 0) throw new Error(`python safetensors ${mode} of ${path} failed (exit ${code}):\n${stderr}`);
    return JSON.parse(stdout) as PythonView;
  }

  it('Python reads what we write, and rounds float32 to F16 exactly as we do', async () => {
    const probe = roundingProbe();
    const tensors: Record<string, TensorRecord> = {
      'layers.0.mixer.in_proj.weight': {
        dtype: 'F32',
        shape: [2, 3],
        data: new Float32Array([1, -2.5, 0.1, 3e38, -0, 7]),
      },
      'layers.0.norm.weight': { dtype: 'F64', shape: [4], data: new Float64Array([Math.PI, -1e-300, 0, 1e-310]) },
      'half.weight': { dtype: 'F16', shape: [2, 2], data: new Float32Array([1, -0.5, 65504, 2 ** -24]) },
      step: { dtype: 'I64', shape: [], data: new BigInt64Array([123n]) },
      'rng.state': { dtype: 'I64', shape: [3], data: new BigInt64Array([2n ** 63n - 1n, -(2n ** 63n), -1n]) },
      positions: { dtype: 'I32', shape: [2, 2], data: new Int32Array([0, -1, 2 ** 31 - 1, -(2 ** 31)]) },
      deltas: { dtype: 'I8', shape: [3], data: new Int8Array([-128, 0, 127]) },
      tokens: { dtype: 'U8', shape: [1, 1, 3], data: new Uint8Array([0, 128, 255]) },
      mask: { dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) },
      'scalar.loss': { dtype: 'F32', shape: [], data: new Float32Array([0.25]) },
      'empty.bias': { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
      'rounding.source': { dtype: 'F32', shape: [probe.length], data: probe },
      'rounding.f16': { dtype: 'F16', shape: [probe.length], data: probe },
    };
    const metadata = { format: 'pt', note: 'ünïcödé "quoted"' };
    const path = join(folder, 'ours.safetensors');
    await writeSafetensorsFile(path, tensors, metadata);

    const seenByPython = await runPython('read', path);
    const ours = await readSafetensorsFile(path);
    expect(seenByPython.metadata).toEqual(metadata);
    expect(seenByPython.tensors).toEqual(describeLikePython(ours.tensors));
    for (const [name, tensor] of Object.entries(tensors)) {
      if (name !== 'rounding.f16') expect(ours.tensors[name]).toEqual(tensor);
    }
    expect(seenByPython.tensors['rounding.f16']!.values).toEqual(seenByPython.numpy_f16);
  });

  it('we read what Python writes, and re-encode it byte for byte', async () => {
    const path = join(folder, 'theirs.safetensors');
    const writtenByPython = await runPython('write', path);
    const bytes = new Uint8Array(await readFile(path));

    const { tensors, metadata } = decodeSafetensors(bytes);
    expect(metadata).toEqual({ format: 'np' });
    expect(describeLikePython(tensors)).toEqual(writtenByPython.tensors);
    expect(tensors.scalar).toEqual({ dtype: 'F32', shape: [], data: new Float32Array([2.5]) });
    expect(tensors.empty).toEqual({ dtype: 'F32', shape: [0, 3], data: new Float32Array(0) });

    const rewritten = join(folder, 'rewritten.safetensors');
    await writeSafetensorsFile(rewritten, tensors, metadata);
    expect(new Uint8Array(await readFile(rewritten))).toEqual(bytes);
  });
});
