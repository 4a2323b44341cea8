import { capabilitiesOf, embeddingLookup, pieceCapacity, selectBackend, tokenRuns } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { startWebgpuBackend } from '../../blocks/test/support/webgpu-device.js';

/**
 * The embedding table's gradient on webgpu (a CPU sort of the token ids, then two summing
 * dispatches, instead of tfjs's UnsortedSegmentSum with float atomics): equal to the cpu
 * backend's gather gradient, bit-identical from run to run, including a token that fills most
 * positions as MQAR's padding does.
 */
const VOCAB = 97;
const WIDTH = 24;

function paddedIds(batch: number, length: number): Int32Array {
  const ids = new Int32Array(batch * length);
  for (let i = 0; i < ids.length; i++) ids[i] = i % 7 === 3 ? (i * 31) % VOCAB : 0;
  return ids;
}

/** d/dTable of Σ lookup(table, ids) ⊙ weights, with the ids tensor fresh from a typed array as the trainer builds it. */
async function tableGradient(ids: Int32Array, batch: number, length: number): Promise<Float32Array> {
  const grad = tf.tidy(() => {
    const table = tf.tensor2d(
      Array.from({ length: VOCAB * WIDTH }, (_, i) => Math.sin(i)),
      [VOCAB, WIDTH],
    );
    const weights = tf.tensor3d(
      Array.from({ length: batch * length * WIDTH }, (_, i) => Math.cos(i * 0.37)),
      [batch, length, WIDTH],
    );
    const idTensor = tf.tensor2d(ids, [batch, length], 'int32');
    return tf.grad((t: tf.Tensor) =>
      embeddingLookup(t as tf.Tensor2D, idTensor, capabilitiesOf(tf.getBackend()))
        .mul(weights)
        .sum(),
    )(table);
  });
  const values = (await grad.data()) as Float32Array;
  grad.dispose();
  return values;
}

describe('tokenRuns', () => {
  it('sorts positions by token, stably, and cuts every run into pieces of at most 32', () => {
    const ids = Int32Array.from([2, 0, 2, 2, 1, 0, ...Array.from({ length: 70 }, () => 1)]);
    const runs = tokenRuns(ids, 4);
    expect(Array.from(runs.order.slice(0, 6))).toEqual([1, 5, 4, 6, 7, 8]);
    expect(Array.from(runs.rowPieces)).toEqual([0, 1, 4, 5, 5]);
    // 76 ids over 4 tokens can need at most ⌈76/32⌉ + 4 = 7 pieces; the unused ones are empty.
    expect(runs.pieces.length).toBe(2 * pieceCapacity(ids.length, 4));
    expect(pieceCapacity(ids.length, 4)).toBe(7);
    const pieces = Array.from({ length: runs.pieces.length / 2 }, (_, p) => [
      runs.pieces[2 * p],
      runs.pieces[2 * p + 1],
    ]);
    expect(pieces).toEqual([
      [0, 2],
      [2, 34],
      [34, 66],
      [66, 73],
      [73, 76],
      [0, 0],
      [0, 0],
    ]);
  });
});

describe('the embedding gradient on webgpu (Dawn over llvmpipe)', () => {
  it('equals the cpu backend gather gradient and repeats bit for bit, leaking no tensors', async () => {
    const [batch, length] = [16, 200];
    const ids = paddedIds(batch, length);
    await selectBackend('cpu');
    const onCpu = await tableGradient(ids, batch, length);
    await startWebgpuBackend();
    const before = tf.memory().numTensors;
    const first = await tableGradient(ids, batch, length);
    const second = await tableGradient(ids, batch, length);
    expect(tf.memory().numTensors).toBe(before);
    let worst = 0;
    for (let i = 0; i < onCpu.length; i++)
      worst = Math.max(worst, Math.abs((first[i] as number) - (onCpu[i] as number)));
    // Row 0 sums ~2,700 products of magnitude ≤ 1 in another order than the cpu backend does.
    expect(worst).toBeLessThan(2e-3);
    expect(Math.max(...Array.from(onCpu, Math.abs))).toBeGreaterThan(1);
    expect(Array.from(second)).toEqual(Array.from(first));
  });
});
