import * as tf from '@tensorflow/tfjs';
import { FLAT_INDEX_WGSL, flatWorkgroups, GpuKernelContext } from '../backend/gpu-dispatch.js';
import { registerUploadDerivation } from '../backend/upload-derivations.js';
import { noteDerivedUpload } from '../backend/webgpu-step-replay.js';
import { InterleaveError } from '../errors.js';

/**
 * The embedding table's gradient on webgpu: dTable[v] = Σ dy[i] over the positions i whose token
 * is v, computed without atomics and in a fixed order.
 *
 * tfjs differentiates `gather` with UnsortedSegmentSum, which on webgpu adds every dy row into
 * its table row with a compare-and-swap loop per float. Positions that share a token contend for
 * the same addresses, and synthetic tasks put one token at most positions (MQAR pads with token 0):
 * on the H200 that one kernel took 330–350 ms of a 385 ms step of Zoology's MQAR model (batch
 * 512 × 64; the rest of the step 45 ms). Its sums also depend on the order the atomics land in,
 * so the same seed did not give bit-identical losses.
 *
 * The token ids are known on the CPU when the batch is built, so the forward pass sorts the
 * positions by token there (a counting sort, O(N + V)) and cuts each token's run into pieces of
 * at most PIECE positions. The backward pass is two dispatches: one thread per (piece, column)
 * sums its piece's dy rows; one thread per (table row, column) sums its pieces. A token that
 * fills 28,000 positions is 875 pieces summed in parallel, then 875 partial sums.
 */
export const EMBEDDING_GRAD_KERNEL = 'InterleaveEmbeddingGrad';

/** Positions summed by one thread of the first pass. */
const PIECE = 32;

/** Where each table row's positions are, as the kernel reads them. */
export interface TokenRuns {
  /** Positions sorted by token (stable): [N]. */
  order: Int32Array;
  /**
   * [P·2]: piece p covers order[pieces[2p] .. pieces[2p+1]). P is the most pieces any ids of this
   * length and vocabulary can need (`pieceCapacity`), the unused ones empty, so the kernels'
   * shapes do not depend on the data and a recorded step can be replayed on the next batch.
   */
  pieces: Int32Array;
  /** [V + 1]: row v's pieces are rowPieces[v] .. rowPieces[v+1]. */
  rowPieces: Int32Array;
}

/**
 * The most pieces `n` ids over `vocab` tokens can cut into: Σ⌈cᵥ/PIECE⌉ ≤ Σ(⌊cᵥ/PIECE⌋ + 1) over
 * the tokens present, at most ⌈n/PIECE⌉ + min(vocab, n).
 */
export function pieceCapacity(n: number, vocab: number): number {
  return Math.max(1, Math.ceil(n / PIECE) + Math.min(vocab, n));
}

/** The upload derivation a replayed step recomputes `tokenRuns` of its token ids with. */
export const TOKEN_RUNS_DERIVATION = 'embedding-token-runs';

registerUploadDerivation(TOKEN_RUNS_DERIVATION, (ids, { vocab }) => {
  const size = vocab as number;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i] as number;
    if (id < 0 || id >= size)
      throw new InterleaveError(`token id ${id} at position ${i} is outside the vocabulary of ${size}`);
  }
  const runs = tokenRuns(ids, size);
  return [runs.order, runs.pieces, runs.rowPieces];
});

/** Sorts positions by token and cuts each token's run into pieces (CPU, O(N + V)). */
export function tokenRuns(ids: ArrayLike<number>, vocab: number): TokenRuns {
  const counts = new Int32Array(vocab + 1);
  for (let i = 0; i < ids.length; i++) {
    const slot = (ids[i] as number) + 1;
    counts[slot] = (counts[slot] as number) + 1;
  }
  const rowPieces = new Int32Array(vocab + 1);
  let pieceCount = 0;
  for (let v = 0; v < vocab; v++) {
    rowPieces[v] = pieceCount;
    pieceCount += Math.ceil((counts[v + 1] as number) / PIECE);
  }
  rowPieces[vocab] = pieceCount;
  // counts → the start of each token's run in `order`
  for (let v = 0; v < vocab; v++) counts[v + 1] = (counts[v + 1] as number) + (counts[v] as number);
  const starts = counts.slice(0, vocab);
  const order = new Int32Array(ids.length);
  const cursor = starts.slice();
  for (let i = 0; i < ids.length; i++) {
    const token = ids[i] as number;
    order[cursor[token] as number] = i;
    cursor[token] = (cursor[token] as number) + 1;
  }
  const pieces = new Int32Array(pieceCapacity(ids.length, vocab) * 2);
  let piece = 0;
  for (let v = 0; v < vocab; v++) {
    const end = cursor[v] as number;
    for (let start = starts[v] as number; start < end; start += PIECE) {
      pieces[2 * piece] = start;
      pieces[2 * piece + 1] = Math.min(start + PIECE, end);
      piece += 1;
    }
  }
  return { order, pieces, rowPieces };
}

const PIECE_SUMS_SHADER = `
@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> order: array<i32>;
@group(0) @binding(2) var<storage, read> pieces: array<i32>;
@group(0) @binding(3) var<storage, read_write> partial: array<f32>;
struct Dims { pieces: u32, width: u32 };
@group(0) @binding(4) var<uniform> dims: Dims;
${FLAT_INDEX_WGSL}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let index = flatIndex(id, groups);
  if (index >= dims.pieces * dims.width) { return; }
  let piece = index / dims.width;
  let column = index % dims.width;
  var sum = 0.0;
  for (var j = pieces[2u * piece]; j < pieces[2u * piece + 1u]; j++) {
    sum += dy[u32(order[j]) * dims.width + column];
  }
  partial[index] = sum;
}`;

const ROW_SUMS_SHADER = `
@group(0) @binding(0) var<storage, read> partial: array<f32>;
@group(0) @binding(1) var<storage, read> rowPieces: array<i32>;
@group(0) @binding(2) var<storage, read_write> dTable: array<f32>;
struct Dims { rows: u32, width: u32 };
@group(0) @binding(3) var<uniform> dims: Dims;
${FLAT_INDEX_WGSL}
@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let index = flatIndex(id, groups);
  if (index >= dims.rows * dims.width) { return; }
  let row = index / dims.width;
  let column = index % dims.width;
  var sum = 0.0;
  for (var p = rowPieces[row]; p < rowPieces[row + 1u]; p++) {
    sum += partial[u32(p) * dims.width + column];
  }
  dTable[index] = sum;
}`;

function registerEmbeddingGrad(): void {
  if (tf.getKernel(EMBEDDING_GRAD_KERNEL, 'webgpu') !== undefined) return;
  tf.registerKernel({
    kernelName: EMBEDDING_GRAD_KERNEL,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { dy, order, pieces, rowPieces } = inputs as Record<'dy' | 'order' | 'pieces' | 'rowPieces', tf.TensorInfo>;
      const vocab = (attrs as { vocab: number }).vocab;
      const width = dy.shape[1] as number;
      const pieceCount = (pieces.shape[0] as number) / 2;
      const context = new GpuKernelContext(backend as tf.KernelBackend);
      const partial = context.allocate([Math.max(1, pieceCount), width]);
      const dTable = context.allocate([vocab, width]);
      context.run({
        key: 'InterleaveEmbeddingGradPieces',
        shader: () => PIECE_SUMS_SHADER,
        bindings: [dy, order, pieces, partial],
        uniforms: [pieceCount, width],
        workgroups: flatWorkgroups(pieceCount * width, context.limits),
      });
      context.run({
        key: 'InterleaveEmbeddingGradRows',
        shader: () => ROW_SUMS_SHADER,
        bindings: [partial, rowPieces, dTable],
        uniforms: [vocab, width],
        workgroups: flatWorkgroups(vocab * width, context.limits),
      });
      context.release(partial);
      return dTable;
    },
  });
}

registerEmbeddingGrad();

/**
 * The values of an int32 tensor that has not been uploaded to the GPU yet (tfjs-webgpu keeps a
 * new tensor's values on the CPU until its first use and drops them then); undefined otherwise.
 * The trainer builds each batch's token tensor from a typed array, so at the embedding lookup
 * (its first use) they are still there.
 */
export function valuesStillOnCpu(tensor: tf.Tensor): ArrayLike<number> | undefined {
  if (tf.getBackend() !== 'webgpu' || tensor.dtype !== 'int32') return undefined;
  const tensorMap = (tf.backend() as unknown as { tensorMap?: { get(id: object): { values?: unknown } | undefined } })
    .tensorMap;
  const values = tensorMap?.get(tensor.dataId)?.values;
  return values instanceof Int32Array ? values : undefined;
}

/**
 * dTable [V, D] from dy [..., D] and the runs of the lookup's token ids `ids` (see `tokenRuns`).
 * The runs are uploads computed from the ids: a recorded training step recomputes them from each
 * replay's ids (webgpu-step-replay.ts).
 */
export function embeddingGradOnGpu(dy: tf.Tensor, ids: tf.Tensor, runs: TokenRuns, vocab: number): tf.Tensor2D {
  return tf.tidy(() => {
    const width = dy.shape[dy.rank - 1] as number;
    const inputs = {
      dy: dy.reshape([-1, width]),
      order: tf.tensor1d(runs.order, 'int32'),
      pieces: tf.tensor1d(runs.pieces, 'int32'),
      rowPieces: tf.tensor1d(runs.rowPieces, 'int32'),
    };
    const dTable = tf.engine().runKernel(
      EMBEDDING_GRAD_KERNEL,
      inputs as unknown as tf.NamedTensorMap,
      {
        vocab,
      } as unknown as tf.NamedAttrMap,
    ) as tf.Tensor2D;
    noteDerivedUpload(ids, [inputs.order, inputs.pieces, inputs.rowPieces], {
      name: TOKEN_RUNS_DERIVATION,
      params: { vocab },
    });
    return dTable;
  });
}
