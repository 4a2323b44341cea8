import { FLAT_INDEX_WGSL, FLAT_WORKGROUP } from './gpu-dispatch.js';

/**
 * WGSL for a batched fp32 matrix product C[b] = op(A[b]) · op(B[b]) with block and register tiling:
 * one workgroup computes a tileM × tileN block of C, each of its threads a microM × microN block
 * held in registers; K is walked in slices of tileK that the workgroup stages in workgroup memory
 * (A's slice stored K-major, i.e. transposed when A is row-major, so that both operands are read
 * as vec4 rows with no bank conflicts). While one slice is multiplied, each thread already holds
 * its share of the next slice in registers (fetched from global memory before the multiply), so
 * the global loads' latency hides behind arithmetic; with `doubleBuffer` the next slice goes into a
 * second workgroup buffer and one barrier per slice suffices instead of two. A product with too
 * few output tiles to fill the GPU and a long K splits K over more workgroups, each writing its
 * partial product, and a second pass adds the partials (in a fixed order).
 *
 * Edges: loads outside a matrix read 0 and stores outside C are skipped, so any M, N, K works.
 * Global loads and stores are vec4 where the contiguous dimension of that matrix is a multiple of
 * 4 (then every vec4 is wholly inside or outside), four checked scalars otherwise.
 *
 * Each C element is one thread's sum in a fixed order of k: the result is deterministic.
 */

export interface MatmulTiling {
  /** How variants are named in INTERLEAVE_MATMUL and the probe's figures. */
  readonly name: string;
  /** Threads along C's rows and columns; the workgroup has threadsM · threadsN threads. */
  readonly threadsM: number;
  readonly threadsN: number;
  /** Each thread's register block of C (multiples of 4). */
  readonly microM: number;
  readonly microN: number;
  /** K per staged slice (a multiple of 4). */
  readonly tileK: number;
  readonly doubleBuffer: boolean;
}

/** What a shader is specialised for besides its tiling. */
export interface MatmulLayout {
  readonly transposeA: boolean;
  readonly transposeB: boolean;
  /** Whether A's, B's and C's contiguous dimension is a multiple of 4 (vec4 global access). */
  readonly vectorA: boolean;
  readonly vectorB: boolean;
  readonly vectorC: boolean;
}

function tiling(
  threadsM: number,
  threadsN: number,
  microM: number,
  microN: number,
  tileK: number,
  doubleBuffer: boolean,
  suffix = '',
) {
  const name = `${threadsM * microM}x${threadsN * microN}k${tileK}${doubleBuffer ? 'db' : ''}${suffix}`;
  return { name, threadsM, threadsN, microM, microN, tileK, doubleBuffer } satisfies MatmulTiling;
}

/** The variants the probe times (bench/gpu/kernel-probe.ts `matmul`); webgpu-matmul.ts picks two of them by shape. */
export const MATMUL_TILINGS: readonly MatmulTiling[] = [
  tiling(8, 16, 8, 8, 16, false), // 64×128 with 128 threads, 12 KiB of workgroup memory
  tiling(8, 16, 8, 8, 32, false), // 64×128, 24 KiB (where the device allows over 16 KiB)
  tiling(8, 16, 8, 8, 16, true), // 64×128, 24 KiB
  tiling(16, 16, 8, 8, 16, false), // 128×128 with 256 threads, 16 KiB
  tiling(16, 16, 8, 8, 8, false), // 128×128, 8 KiB
  tiling(16, 16, 8, 8, 32, false), // 128×128, 32 KiB
  tiling(16, 16, 8, 4, 16, false), // 128×64, 12 KiB
  tiling(16, 16, 4, 4, 16, false), // 64×64, 8 KiB
  tiling(8, 16, 8, 8, 8, false), // 64×128, 8 KiB
  tiling(16, 8, 8, 16, 16, false, 't128'), // 128×128 with 128 threads of 8×16, 16 KiB
  tiling(8, 32, 8, 8, 16, false), // 64×256 with 256 threads, 20 KiB
  tiling(8, 8, 8, 8, 16, false, 't64'), // 64×64 with 64 threads of 8×8, 8 KiB
];

export function tileM(t: MatmulTiling): number {
  return t.threadsM * t.microM;
}
export function tileN(t: MatmulTiling): number {
  return t.threadsN * t.microN;
}
export function threadsOf(t: MatmulTiling): number {
  return t.threadsM * t.threadsN;
}
/** Bytes of workgroup memory the shader declares. */
export function workgroupBytes(t: MatmulTiling): number {
  return (t.doubleBuffer ? 2 : 1) * t.tileK * (tileM(t) + tileN(t)) * 4;
}

export function matmulShaderKey(t: MatmulTiling, layout: MatmulLayout): string {
  const flag = (on: boolean, letter: string) => (on ? letter : '-');
  return `InterleaveMatmul_${t.name}_${flag(layout.transposeA, 'a')}${flag(layout.transposeB, 'b')}${flag(layout.vectorA, 'A')}${flag(layout.vectorB, 'B')}${flag(layout.vectorC, 'C')}`;
}

const range = (count: number) => Array.from({ length: count }, (_, index) => index);
const COMPONENTS = ['x', 'y', 'z', 'w'] as const;

/** A global-memory operand as the shader sees it: the matrix stored [rows, cols] row-major. */
interface Operand {
  readonly name: 'a' | 'b';
  readonly vector: boolean;
  /** True when K is the stored matrix's column (contiguous) dimension. */
  readonly kContiguous: boolean;
  /** The operand's extent in the workgroup tile (tileM for A, tileN for B). */
  readonly tile: number;
  /** WGSL for the operand's outer extent (M for A, N for B) and the tile's first outer index. */
  readonly extent: string;
  readonly origin: string;
  /** WGSL for the offset of this batch's matrix. */
  readonly base: string;
}

/**
 * `load_a(base, row, col, rows, cols, stride)`: four consecutive floats of a stored row, zero
 * outside rows × cols (cols may end before the row does: a split of K ends there).
 */
function loadFunction(operand: Operand): string {
  const { name, vector } = operand;
  if (vector) {
    return `
fn load_${name}(base: u32, row: u32, col: u32, rows: u32, cols: u32, stride: u32) -> vec4<f32> {
  if (row < rows && col < cols) { return ${name}[(base + row * stride + col) / 4u]; }
  return vec4<f32>();
}`;
  }
  return `
fn load_${name}(base: u32, row: u32, col: u32, rows: u32, cols: u32, stride: u32) -> vec4<f32> {
  var value = vec4<f32>();
  if (row < rows) {
    let at = base + row * stride + col;
${range(4)
  .map((c) => `    if (col + ${c}u < cols) { value.${COMPONENTS[c]} = ${name}[at + ${c}u]; }`)
  .join('\n')}
  }
  return value;
}`;
}

/**
 * The statements that fetch one thread's share of a K slice into registers (`fetch`) and store
 * those registers into the staging buffer (`stash`). Slot v of the slice's tile·tileK/4 vec4s
 * belongs to thread v mod threads.
 */
function staging(operand: Operand, t: MatmulTiling): { declare: string; fetch: string; stash: string } {
  const threads = threadsOf(t);
  const slots = (operand.tile * t.tileK) / 4;
  const perThread = Math.ceil(slots / threads);
  const tile4 = operand.tile / 4;
  const k4 = t.tileK / 4;
  const { name } = operand;
  const declare: string[] = [];
  const fetch: string[] = [];
  const stash: string[] = [];
  for (const p of range(perThread)) {
    const register = `staged_${name}${p}`;
    const slot = `(lane + ${p * threads}u)`;
    const guard = (statement: string) =>
      slots % threads === 0 ? statement : `if (${slot} < ${slots}u) { ${statement} }`;
    declare.push(`var ${register} = vec4<f32>();`);
    if (operand.kContiguous) {
      // Stored [outer, K]: a vec4 runs along k; it is scattered into four K-major rows of the tile.
      const outer = `${slot} / ${k4}u`;
      const kq = `${slot} % ${k4}u`;
      fetch.push(
        guard(
          `${register} = load_${name}(${operand.base}, ${operand.origin} + ${outer}, k0 + ${kq} * 4u, ${operand.extent}, k_end, dims.k);`,
        ),
      );
      const writes = range(4)
        .map(
          (c) =>
            `tile_${name}[buffer_${name} + (${kq} * 4u + ${c}u) * ${tile4}u + ${outer} / 4u][${outer} % 4u] = ${register}.${COMPONENTS[c]};`,
        )
        .join(' ');
      stash.push(guard(writes));
    } else {
      // Stored [K, outer]: a vec4 runs along the outer dimension, as the tile stores it.
      const kk = `${slot} / ${tile4}u`;
      const oq = `${slot} % ${tile4}u`;
      fetch.push(
        guard(
          `${register} = load_${name}(${operand.base}, k0 + ${kk}, ${operand.origin} + ${oq} * 4u, k_end, ${operand.extent}, ${operand.extent});`,
        ),
      );
      stash.push(guard(`tile_${name}[buffer_${name} + ${kk} * ${tile4}u + ${oq}] = ${register};`));
    }
  }
  return { declare: declare.join('\n  '), fetch: fetch.join('\n    '), stash: stash.join('\n    ') };
}

/** The unrolled multiply of one staged slice into the accumulators acc_<row>_<col4>. */
function multiplySlice(t: MatmulTiling): string {
  const m4 = t.microM / 4;
  const n4 = t.microN / 4;
  const lines: string[] = [];
  for (const k of range(t.tileK)) {
    for (const i of range(m4)) {
      lines.push(`let a${k}_${i} = tile_a[buffer_a + ${k * (tileM(t) / 4)}u + ty + ${i * t.threadsM}u];`);
    }
    for (const j of range(n4)) {
      lines.push(`let b${k}_${j} = tile_b[buffer_b + ${k * (tileN(t) / 4)}u + tx + ${j * t.threadsN}u];`);
    }
    for (const i of range(m4)) {
      for (const c of range(4)) {
        for (const j of range(n4)) {
          lines.push(`acc_${i * 4 + c}_${j} += a${k}_${i}.${COMPONENTS[c]} * b${k}_${j};`);
        }
      }
    }
  }
  return lines.join('\n      ');
}

function storeResults(t: MatmulTiling, vectorC: boolean): string {
  const lines: string[] = [];
  for (const i of range(t.microM / 4)) {
    for (const c of range(4)) {
      const row = `row0 + (ty + ${i * t.threadsM}u) * 4u + ${c}u`;
      lines.push(`{ let row = ${row};`);
      lines.push('  if (row < dims.m) {');
      for (const j of range(t.microN / 4)) {
        const value = `acc_${i * 4 + c}_${j}`;
        lines.push(`    { let col = col0 + (tx + ${j * t.threadsN}u) * 4u;`);
        if (vectorC) {
          lines.push(`      if (col < dims.n) { c[(out_base + row * dims.n + col) / 4u] = ${value}; } }`);
        } else {
          const scalar = range(4).map(
            (q) =>
              `if (col + ${q}u < dims.n) { c[out_base + row * dims.n + col + ${q}u] = ${value}.${COMPONENTS[q]}; }`,
          );
          lines.push(`      ${scalar.join(' ')} }`);
        }
      }
      lines.push('  } }');
    }
  }
  return lines.join('\n  ');
}

/**
 * Bindings: 0 A, 1 B (read), 2 C (written), 3 the uniform struct
 * { m, n, k, batch stride of A, batch stride of B, batch, k_split } (u32 words; a stride of 0
 * broadcasts). Dispatch: (ceil(N / tileN), ceil(M / tileM), splits · batch) workgroups; split s
 * sums k in [s·k_split, (s+1)·k_split) into C's matrix s · batch + b (`splitSumShader` adds them).
 */
export function matmulShader(t: MatmulTiling, layout: MatmulLayout): string {
  const tm = tileM(t);
  const tn = tileN(t);
  const buffers = t.doubleBuffer ? 2 : 1;
  const a: Operand = {
    name: 'a',
    vector: layout.vectorA,
    kContiguous: !layout.transposeA,
    tile: tm,
    extent: 'dims.m',
    origin: 'row0',
    base: 'base_a',
  };
  const b: Operand = {
    name: 'b',
    vector: layout.vectorB,
    kContiguous: layout.transposeB,
    tile: tn,
    extent: 'dims.n',
    origin: 'col0',
    base: 'base_b',
  };
  const stageA = staging(a, t);
  const stageB = staging(b, t);
  const accumulators = range(t.microM)
    .flatMap((row) => range(t.microN / 4).map((j) => `var acc_${row}_${j} = vec4<f32>();`))
    .join('\n  ');
  const element = (vector: boolean) => (vector ? 'vec4<f32>' : 'f32');
  const sliceA = t.tileK * (tm / 4);
  const sliceB = t.tileK * (tn / 4);
  const bufferOf = (slice: number, which: string) => (t.doubleBuffer ? `(${which} % 2u) * ${slice}u` : '0u');
  const loop = t.doubleBuffer
    ? `
  for (var s = 0u; s < slices; s++) {
    let k0 = k_begin + (s + 1u) * ${t.tileK}u;
    if (s + 1u < slices) {
    ${stageA.fetch}
    ${stageB.fetch}
    }
    {
      let buffer_a = ${bufferOf(sliceA, 's')};
      let buffer_b = ${bufferOf(sliceB, 's')};
      ${multiplySlice(t)}
    }
    if (s + 1u < slices) {
      let buffer_a = ${bufferOf(sliceA, '(s + 1u)')};
      let buffer_b = ${bufferOf(sliceB, '(s + 1u)')};
    ${stageA.stash}
    ${stageB.stash}
    }
    workgroupBarrier();
  }`
    : `
  for (var s = 0u; s < slices; s++) {
    let k0 = k_begin + (s + 1u) * ${t.tileK}u;
    if (s + 1u < slices) {
    ${stageA.fetch}
    ${stageB.fetch}
    }
    {
      let buffer_a = 0u;
      let buffer_b = 0u;
      ${multiplySlice(t)}
    }
    workgroupBarrier();
    if (s + 1u < slices) {
      let buffer_a = 0u;
      let buffer_b = 0u;
    ${stageA.stash}
    ${stageB.stash}
    }
    workgroupBarrier();
  }`;
  return `
@group(0) @binding(0) var<storage, read> a: array<${element(layout.vectorA)}>;
@group(0) @binding(1) var<storage, read> b: array<${element(layout.vectorB)}>;
@group(0) @binding(2) var<storage, read_write> c: array<${element(layout.vectorC)}>;
struct Dims { m: u32, n: u32, k: u32, stride_a: u32, stride_b: u32, batch: u32, k_split: u32 };
@group(0) @binding(3) var<uniform> dims: Dims;

var<workgroup> tile_a: array<vec4<f32>, ${buffers * sliceA}>;
var<workgroup> tile_b: array<vec4<f32>, ${buffers * sliceB}>;
${loadFunction(a)}
${loadFunction(b)}

@compute @workgroup_size(${threadsOf(t)})
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let tx = lane % ${t.threadsN}u;
  let ty = lane / ${t.threadsN}u;
  let row0 = group.y * ${tm}u;
  let col0 = group.x * ${tn}u;
  // group.z = split · batch + matrix; without a split of K, split = 0 and k_split ≥ K.
  let matrix = group.z % dims.batch;
  let k_begin = (group.z / dims.batch) * dims.k_split;
  let k_end = min(dims.k, k_begin + dims.k_split);
  let base_a = matrix * dims.stride_a;
  let base_b = matrix * dims.stride_b;
  let out_base = group.z * dims.m * dims.n;
  let slices = (k_end - k_begin + ${t.tileK - 1}u) / ${t.tileK}u;
  ${accumulators}
  ${stageA.declare}
  ${stageB.declare}
  {
    let k0 = k_begin;
    let buffer_a = 0u;
    let buffer_b = 0u;
    ${stageA.fetch}
    ${stageB.fetch}
    ${stageA.stash}
    ${stageB.stash}
  }
  workgroupBarrier();
${loop}
  ${storeResults(t, layout.vectorC)}
}`;
}

/**
 * Sums the partial products of a split K in a fixed order (split 0 first): bindings 0 the
 * [splits, total] partials, 1 the [total] result, 2 { total, splits }.
 */
export function splitSumShader(): string {
  return `
@group(0) @binding(0) var<storage, read> partial: array<f32>;
@group(0) @binding(1) var<storage, read_write> result: array<f32>;
struct Sizes { total: u32, splits: u32 };
@group(0) @binding(2) var<uniform> sizes: Sizes;
${FLAT_INDEX_WGSL}

@compute @workgroup_size(${FLAT_WORKGROUP})
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let i = flatIndex(id, groups);
  if (i >= sizes.total) { return; }
  var sum = partial[i];
  for (var s = 1u; s < sizes.splits; s++) { sum += partial[s * sizes.total + i]; }
  result[i] = sum;
}`;
}
