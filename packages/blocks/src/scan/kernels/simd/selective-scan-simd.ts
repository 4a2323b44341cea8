import { InterleaveError } from '@interleave/core';
import type { SelectiveScanDims } from '../scan-math.mjs';
import { SELECTIVE_SCAN_WASM_BASE64 } from './selective-scan-wasm-binary.js';

/**
 * The selective scan as a WebAssembly SIMD module (its text: selective-scan-wat.mjs), for the
 * host backends (cpu, wasm, tensorflow). V8 runs the JavaScript kernels of scan-math.mjs one
 * float64 at a time, about 28 cycles per state update with its exp; here four states share each
 * instruction, in float32 as in the WGSL kernels: on the demo's scan (B 32, L 64, d_inner 128,
 * d_state 16) forward 4× and backward 5–6× faster than the JavaScript on one thread
 * (docs/benchmarks.md). It runs on the calling thread, inputs copied into the module's memory
 * and outputs copied out (a few MiB per call: small beside the scan).
 *
 * `INTERLEAVE_SCAN_SIMD=off` selects the JavaScript kernels (float64 state, split over worker
 * threads); they also run wherever d_state is not a multiple of 4.
 */

/** The parts of the WebAssembly API used here (the project's TypeScript lib has no DOM types). */
interface WebAssemblyApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}
const webAssembly = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

interface ScanModule {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  forward: (...args: number[]) => void;
  backward: (...args: number[]) => void;
}

/** Channels per block in the backward pass, as in scan-math.mjs: the block's recomputed states stay in cache. */
const CHANNEL_BLOCK = 8;
/** Every array starts on a 16-byte boundary, so that v128 loads are aligned. */
const ALIGN = 16;
/** Pointers are i32 byte offsets: stay well inside them (larger calls take the JavaScript kernels). */
const MAX_BYTES = 2 ** 31;
const PAGE_BYTES = 65536;

let scanModule: ScanModule | undefined;

function loadModule(): ScanModule {
  if (scanModule === undefined) {
    const bytes = Uint8Array.from(atob(SELECTIVE_SCAN_WASM_BASE64), (char) => char.charCodeAt(0));
    const instance = new webAssembly.Instance(new webAssembly.Module(bytes), {});
    scanModule = instance.exports as unknown as ScanModule;
  }
  return scanModule;
}

/** Whether the SIMD kernels take a call of these dimensions: switched on, d_state a multiple of 4, and within the memory. */
export function simdScanApplies(dims: SelectiveScanDims): boolean {
  const setting = process.env.INTERLEAVE_SCAN_SIMD;
  if (setting !== undefined && setting !== '' && setting !== 'on' && setting !== 'off') {
    throw new InterleaveError(`INTERLEAVE_SCAN_SIMD must be 'on' or 'off', got '${setting}'`);
  }
  if (setting === 'off' || dims.dState % 4 !== 0) return false;
  return totalBytes(backwardLayout(dims)) < MAX_BYTES;
}

type Layout = Record<string, number>;

function forwardLayout({ batch, length, dInner, dState }: SelectiveScanDims): Layout {
  const sequence = batch * length;
  return {
    x: sequence * dInner,
    dt: sequence * dInner,
    a: dInner * dState,
    b: sequence * dState,
    c: sequence * dState,
    y: sequence * dInner,
    h: dInner * dState,
  };
}

function backwardLayout(dims: SelectiveScanDims): Layout {
  const { batch, length, dInner, dState } = dims;
  const sequence = batch * length;
  const block = CHANNEL_BLOCK * dState;
  return {
    x: sequence * dInner,
    dt: sequence * dInner,
    a: dInner * dState,
    b: sequence * dState,
    c: sequence * dState,
    dy: sequence * dInner,
    dx: sequence * dInner,
    ddt: sequence * dInner,
    da: dInner * dState,
    db: sequence * dState,
    dc: sequence * dState,
    states: length * block,
    decays: length * block,
    zero: block,
    gh: block,
    gA: block,
  };
}

const paddedBytes = (floats: number) => Math.ceil((floats * 4) / ALIGN) * ALIGN;

function totalBytes(layout: Layout): number {
  return Object.values(layout).reduce((sum, floats) => sum + paddedBytes(floats), 0);
}

/** Byte offsets of every array of `layout`, after growing the memory to hold them all. */
function place(module: ScanModule, layout: Layout): Record<string, number> {
  const offsets: Record<string, number> = {};
  let next = 0;
  for (const [name, floats] of Object.entries(layout)) {
    offsets[name] = next;
    next += paddedBytes(floats);
  }
  const missing = next - module.memory.buffer.byteLength;
  if (missing > 0) module.memory.grow(Math.ceil(missing / PAGE_BYTES));
  return offsets;
}

function view(module: ScanModule, offset: number, floats: number): Float32Array {
  return new Float32Array(module.memory.buffer, offset, floats);
}

/** y = scan(x, dt, a, b, c), written into `y`. */
export function simdSelectiveScanForward(
  inputs: Record<'x' | 'dt' | 'a' | 'b' | 'c', Float32Array>,
  dims: SelectiveScanDims,
  y: Float32Array,
): void {
  const module = loadModule();
  const layout = forwardLayout(dims);
  const at = place(module, layout);
  const offset = (name: string) => at[name] as number;
  for (const name of ['x', 'dt', 'a', 'b', 'c'] as const) {
    view(module, offset(name), layout[name] as number).set(inputs[name]);
  }
  const { batch, length, dInner, dState } = dims;
  module.forward(...['x', 'dt', 'a', 'b', 'c', 'y', 'h'].map(offset), batch, length, dInner, dState);
  y.set(view(module, offset('y'), y.length));
}

/** The five input gradients given dy, written into `outputs` (db and dc need not start zeroed). */
export function simdSelectiveScanBackward(
  inputs: Record<'x' | 'dt' | 'a' | 'b' | 'c' | 'dy', Float32Array>,
  dims: SelectiveScanDims,
  outputs: Record<'dx' | 'ddt' | 'da' | 'db' | 'dc', Float32Array>,
): void {
  const module = loadModule();
  const layout = backwardLayout(dims);
  const at = place(module, layout);
  const offset = (name: string) => at[name] as number;
  for (const name of ['x', 'dt', 'a', 'b', 'c', 'dy'] as const) {
    view(module, offset(name), layout[name] as number).set(inputs[name]);
  }
  for (const name of ['db', 'dc', 'zero'] as const) view(module, offset(name), layout[name] as number).fill(0);
  const { batch, length, dInner, dState } = dims;
  module.backward(
    ...['x', 'dt', 'a', 'b', 'c', 'dy', 'dx', 'ddt', 'da', 'db', 'dc', 'states', 'decays', 'zero', 'gh', 'gA'].map(
      offset,
    ),
    batch,
    length,
    dInner,
    dState,
    CHANNEL_BLOCK,
  );
  for (const name of ['dx', 'ddt', 'da', 'db', 'dc'] as const) {
    outputs[name].set(view(module, offset(name), outputs[name].length));
  }
}
