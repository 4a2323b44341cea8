import * as tf from '@tensorflow/tfjs';
import { InterleaveError } from '../errors.js';
import { flatWorkgroups, GpuKernelContext } from './gpu-dispatch.js';
import {
  MATMUL_TILINGS,
  type MatmulLayout,
  type MatmulTiling,
  matmulShader,
  matmulShaderKey,
  splitSumShader,
  threadsOf,
  tileM,
  tileN,
  workgroupBytes,
} from './matmul-wgsl.js';

/**
 * tfjs's `BatchMatMul` on webgpu, replaced for large products by Interleave's register-tiled WGSL
 * kernel (matmul-wgsl.ts); smaller ones, other dtypes and batch broadcasts other than "one side
 * has a single matrix" keep tfjs-webgpu's own kernel, which stays registered as the fallback.
 * Gradients need nothing extra: BatchMatMul's gradient is BatchMatMul with transpose flags.
 * `_FusedMatMul` (tf.fused.matMul) is left to tfjs: no Interleave model calls it.
 *
 * `INTERLEAVE_MATMUL=tfjs` keeps tfjs's kernel for every product (for A/B comparisons);
 * `INTERLEAVE_MATMUL=<tiling>` (a name from MATMUL_TILINGS, e.g. 64x128k16) pins one tiling.
 */

/**
 * From this many output elements (batch · M · N) and this inner size on, the product is ours.
 * Below, our tiles leave most of the GPU idle (2^18 = 512² is 32 tiles of 64×128, against 132
 * multiprocessors on an H200) and the product is cheap either way; tfjs-webgpu's 32×32 tiles,
 * split-K and reduction kernels are made for those shapes. Not tuned on the GPU: the H200 figures
 * (docs/gpu.md) are all far above it.
 */
export const MATMUL_MIN_OUTPUT_ELEMENTS = 2 ** 18;
export const MATMUL_MIN_INNER = 64;
/**
 * A product with a smaller output is still ours when it is this much work (multiply-adds): split
 * over K it fills the GPU, where tfjs-webgpu gives it 32×32 tiles that each walk all of K (its
 * MatMulPackedProgram) or a split-K kernel that adds partial tiles with atomics. Weight gradients
 * xᵀ·dy of small models are such products: in Zoology's attention step on the H200 (B512 × 64,
 * d_model 64; docs/gpu.md, sixth session) the eight 64 × 64 projection gradients over 32,768 rows
 * (2^27 multiply-adds each) took 2.9 of the step's 6.5 ms on tfjs's split-K kernel, and the 4-layer
 * Mamba's 64 × 256 ones 1.0 ms each on its packed kernel. At 2^24 (e.g. 64 × 64 over K 4,096, 16
 * splits) the split partial sums stay a few hundred KiB.
 */
export const MATMUL_MIN_WORK = 2 ** 24;

/**
 * A product with fewer output tiles than this splits K to reach it: about two resident
 * workgroups on each of an H200's 132 multiprocessors. Weight gradients (e.g. xᵀ·dy: 256 × 1024
 * outputs summed over 16,384 rows) are such products: unsplit, 32 workgroups walk K alone.
 */
export const MATMUL_TARGET_WORKGROUPS = 264;
/** Each split keeps at least this much of K, so that the partial products' extra writes stay small. */
export const MATMUL_MIN_K_PER_SPLIT = 256;

export type MatmulKernelChoice = 'auto' | 'interleave' | 'tfjs';

interface MatmulSettings {
  /** auto: ours above the thresholds; interleave: ours wherever it applies (tests); tfjs: never. */
  kernel: MatmulKernelChoice;
  /** A tiling for every product (INTERLEAVE_MATMUL=<tiling>, the probe), or undefined: by shape (`tilingFor`). */
  tiling: MatmulTiling | undefined;
  /** Whether products with few output tiles split K (on unless switched off for a comparison). */
  splitK: boolean;
}

/**
 * The tilings picked by shape, from the H200 figures in docs/gpu.md: 128×128 tiles of 128 threads
 * were fastest where a product has at least MATMUL_TARGET_WORKGROUPS / 2 of them (41.6 TFLOP/s
 * at 4096², 40.1 on the tied head's dX); below that 64×128 tiles fill the GPU better (36.9 against
 * 32.1 on the head's dW). DEFAULT_TILING needs the fewest resources and is the fallback where a
 * device lacks the room for another.
 */
const LARGE_TILING = matmulTilingNamed('128x128k16t128') as MatmulTiling;
const DEFAULT_TILING = matmulTilingNamed('64x128k16') as MatmulTiling;
let settings: MatmulSettings = { kernel: 'auto', tiling: undefined, splitK: true };

/** How many BatchMatMul calls each kernel took (for tests and the probe); splitK: ours with K split. */
export const webgpuMatmulCounts = { interleave: 0, tfjs: 0, splitK: 0 };

export function matmulTilingNamed(name: string): MatmulTiling | undefined {
  return MATMUL_TILINGS.find((t) => t.name === name);
}

/** Overrides the kernel choice and tiling (tests, the probe); unset fields return to the defaults. */
export function configureWebgpuMatmul(
  options: { kernel?: MatmulKernelChoice; tiling?: string; splitK?: boolean } = {},
): void {
  const tiling = options.tiling === undefined ? undefined : matmulTilingNamed(options.tiling);
  if (options.tiling !== undefined && tiling === undefined) throw new InterleaveError(unknownTiling(options.tiling));
  settings = { kernel: options.kernel ?? 'auto', tiling, splitK: options.splitK ?? true };
}

function unknownTiling(name: string): string {
  return `unknown matmul tiling '${name}' (expected tfjs or one of ${MATMUL_TILINGS.map((t) => t.name).join(', ')})`;
}

function settingsFromEnvironment(): MatmulSettings {
  const value = process.env.INTERLEAVE_MATMUL;
  if (value === undefined || value === '') return { kernel: 'auto', tiling: undefined, splitK: true };
  if (value === 'tfjs') return { kernel: 'tfjs', tiling: undefined, splitK: true };
  const tiling = matmulTilingNamed(value);
  if (tiling === undefined) throw new InterleaveError(`INTERLEAVE_MATMUL=${value}: ${unknownTiling(value)}`);
  return { kernel: 'auto', tiling, splitK: true };
}

/** Throws the one-line error for an INTERLEAVE_MATMUL value that names nothing (checked on every backend). */
export function checkMatmulEnvironment(): void {
  settingsFromEnvironment();
}

let installed = false;

/**
 * Puts the kernel in front of tfjs-webgpu's BatchMatMul (once per process; the kernel registry
 * is global). Called where the webgpu backend starts; reads INTERLEAVE_MATMUL.
 */
export function installWebgpuMatmul(): void {
  if (installed) return;
  const original = tf.getKernel('BatchMatMul', 'webgpu');
  if (original === undefined) return;
  settings = settingsFromEnvironment();
  installed = true;
  tf.unregisterKernel('BatchMatMul', 'webgpu');
  tf.registerKernel({
    ...original,
    kernelFunc: (args) => {
      const ours = productOnGpu(args);
      if (ours !== undefined) {
        webgpuMatmulCounts.interleave++;
        return ours;
      }
      webgpuMatmulCounts.tfjs++;
      return original.kernelFunc(args);
    },
  });
}

interface Plan {
  readonly m: number;
  readonly n: number;
  readonly k: number;
  readonly outShape: number[];
  readonly batch: number;
  readonly strideA: number;
  readonly strideB: number;
  readonly layout: MatmulLayout;
}

const product = (sizes: readonly number[]) => sizes.reduce((total, size) => total * size, 1);

/** The product's sizes when this kernel should take it, else undefined (tfjs's kernel runs). */
export function planMatmul(
  a: { shape: readonly number[]; dtype: string },
  b: { shape: readonly number[]; dtype: string },
  transposeA: boolean,
  transposeB: boolean,
  kernel: MatmulKernelChoice = settings.kernel,
): Plan | undefined {
  if (kernel === 'tfjs' || a.dtype !== 'float32' || b.dtype !== 'float32') return undefined;
  if (a.shape.length < 2 || b.shape.length < 2) return undefined;
  const [rowsA, colsA] = a.shape.slice(-2) as [number, number];
  const [rowsB, colsB] = b.shape.slice(-2) as [number, number];
  const [m, k] = transposeA ? [colsA, rowsA] : [rowsA, colsA];
  const [kB, n] = transposeB ? [colsB, rowsB] : [rowsB, colsB];
  // A mismatch or an empty product: tfjs's kernel says what is wrong or fills nothing.
  if (k !== kB || m === 0 || n === 0 || k === 0) return undefined;
  const batchShapeA = a.shape.slice(0, -2);
  const batchShapeB = b.shape.slice(0, -2);
  let outBatchShape: number[];
  try {
    outBatchShape = tf.backend_util.assertAndGetBroadcastShape([...batchShapeA], [...batchShapeB]);
  } catch {
    return undefined;
  }
  const batch = product(outBatchShape);
  const batchA = product(batchShapeA);
  const batchB = product(batchShapeB);
  // Each side is either one matrix for the whole batch (stride 0) or one per output matrix.
  if ((batchA !== batch && batchA !== 1) || (batchB !== batch && batchB !== 1)) return undefined;
  if (kernel === 'auto' && !worthOurKernel(batch * m * n, k)) return undefined;
  return {
    m,
    n,
    k,
    batch,
    outShape: [...outBatchShape, m, n],
    strideA: batchA === 1 ? 0 : m * k,
    strideB: batchB === 1 ? 0 : k * n,
    layout: {
      transposeA,
      transposeB,
      vectorA: colsA % 4 === 0,
      vectorB: colsB % 4 === 0,
      vectorC: n % 4 === 0,
    },
  };
}

/** Whether a product of `outputs` elements over an inner size `k` goes to this kernel under `auto`. */
function worthOurKernel(outputs: number, k: number): boolean {
  if (k < MATMUL_MIN_INNER) return false;
  return outputs >= MATMUL_MIN_OUTPUT_ELEMENTS || outputs * k >= MATMUL_MIN_WORK;
}

/** The tiling for this product on this device: the one asked for, else by shape; DEFAULT_TILING where the device lacks room. */
function tilingFor(context: GpuKernelContext, plan: Plan): MatmulTiling {
  const { maxComputeWorkgroupStorageSize, maxComputeInvocationsPerWorkgroup } = context.limits;
  const fits = (t: MatmulTiling) =>
    workgroupBytes(t) <= maxComputeWorkgroupStorageSize && threadsOf(t) <= maxComputeInvocationsPerWorkgroup;
  const largeTiles = plan.batch * Math.ceil(plan.m / tileM(LARGE_TILING)) * Math.ceil(plan.n / tileN(LARGE_TILING));
  const wanted = settings.tiling ?? (largeTiles >= MATMUL_TARGET_WORKGROUPS / 2 ? LARGE_TILING : DEFAULT_TILING);
  return fits(wanted) ? wanted : DEFAULT_TILING;
}

/** How many parts K is split into for a product of `tiles` output tiles (1: no split). */
export function splitsOfK(tiles: number, k: number, tiling: MatmulTiling): { splits: number; kPerSplit: number } {
  const wanted = Math.min(Math.ceil(MATMUL_TARGET_WORKGROUPS / tiles), Math.floor(k / MATMUL_MIN_K_PER_SPLIT));
  if (!settings.splitK || wanted < 2) return { splits: 1, kPerSplit: k };
  const kPerSplit = Math.ceil(k / wanted / tiling.tileK) * tiling.tileK;
  return { splits: Math.ceil(k / kPerSplit), kPerSplit };
}

function productOnGpu({ inputs, backend, attrs }: Parameters<tf.KernelFunc>[0]): tf.TensorInfo | undefined {
  const { a, b } = inputs as Record<'a' | 'b', tf.TensorInfo>;
  const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
  const plan = planMatmul(a, b, transposeA, transposeB);
  if (plan === undefined) return undefined;
  const context = new GpuKernelContext(backend as tf.KernelBackend);
  const { limits } = context;
  const tiling = tilingFor(context, plan);
  const tiles = plan.batch * Math.ceil(plan.n / tileN(tiling)) * Math.ceil(plan.m / tileM(tiling));
  let { splits, kPerSplit } = splitsOfK(tiles, plan.k, tiling);
  const outputFloats = plan.batch * plan.m * plan.n;
  if (splits > 1 && splits * outputFloats * 4 > limits.maxStorageBufferBindingSize)
    ({ splits, kPerSplit } = { splits: 1, kPerSplit: plan.k });
  const groups: [number, number, number] = [
    Math.ceil(plan.n / tileN(tiling)),
    Math.ceil(plan.m / tileM(tiling)),
    splits * plan.batch,
  ];
  if (groups.some((count) => count > limits.maxComputeWorkgroupsPerDimension)) return undefined;
  const out = context.allocate(plan.outShape);
  const target = splits > 1 ? context.allocate([splits * outputFloats]) : out;
  context.run({
    key: matmulShaderKey(tiling, plan.layout),
    shader: () => matmulShader(tiling, plan.layout),
    bindings: [a, b, target],
    uniforms: [plan.m, plan.n, plan.k, plan.strideA, plan.strideB, plan.batch, kPerSplit],
    workgroups: groups,
  });
  if (target !== out) {
    webgpuMatmulCounts.splitK++;
    context.run({
      key: 'InterleaveMatmulSplitSum',
      shader: splitSumShader,
      bindings: [target, out],
      uniforms: [outputFloats, splits],
      workgroups: flatWorkgroups(outputFloats, limits),
    });
    context.release(target);
  }
  return out;
}
