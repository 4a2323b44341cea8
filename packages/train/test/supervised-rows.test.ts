import type { TokenBatch } from '@interleave/core';
import { describe, expect, it } from 'vitest';
import { supervisedRows } from '../src/trainer/supervised-rows.js';

/** A batch of `batchSize` × `seqLen` whose mask is 1 at the given flat positions. */
function batchWithMask(batchSize: number, seqLen: number, supervised: number[]): TokenBatch {
  const size = batchSize * seqLen;
  const mask = new Float32Array(size);
  const targets = new Int32Array(size);
  for (const position of supervised) {
    mask[position] = 1;
    targets[position] = 100 + position;
  }
  return { batchSize, seqLen, inputs: new Int32Array(size), targets, mask };
}

describe('supervisedRows', () => {
  it('lists the supervised positions in order with their targets, padded to B · 2^k rows', () => {
    // 2 × 16 positions, 3 supervised: capacity 4 (B = 2, doubled once).
    const rows = supervisedRows(batchWithMask(2, 16, [3, 17, 30]));
    expect(Array.from(rows?.rows ?? [])).toEqual([3, 17, 30, 0]); // padding: the first unsupervised position
    expect(Array.from(rows?.targets ?? [])).toEqual([103, 117, 130, 0]);
    expect(Array.from(rows?.mask ?? [])).toEqual([1, 1, 1, 0]);
  });

  it('gives batches with nearby counts one shape', () => {
    const five = supervisedRows(batchWithMask(4, 16, [1, 2, 3, 4, 5]));
    const eight = supervisedRows(batchWithMask(4, 16, [1, 2, 3, 4, 5, 6, 7, 8]));
    expect(five?.rows.length).toBe(8);
    expect(eight?.rows.length).toBe(8);
    // None supervised: still B rows, all padding (the loss divides by at least 1).
    expect(Array.from(supervisedRows(batchWithMask(4, 16, []))?.mask ?? [1])).toEqual([0, 0, 0, 0]);
    // Padding names distinct unsupervised positions.
    const padded = supervisedRows(batchWithMask(2, 16, [0, 1, 2, 5, 17]));
    expect(Array.from(padded?.rows ?? [])).toEqual([0, 1, 2, 5, 17, 3, 4, 6]);
    expect(Array.from(padded?.mask ?? [])).toEqual([1, 1, 1, 1, 1, 0, 0, 0]);
  });

  it('declines when the padded rows would be over half of all positions', () => {
    // 2 × 8 = 16 positions: 4 supervised pad to 4 (kept); 5 pad to 8 (half: kept); 9 pad to 16.
    expect(supervisedRows(batchWithMask(2, 8, [0, 1, 2, 3]))?.rows.length).toBe(4);
    expect(supervisedRows(batchWithMask(2, 8, [0, 1, 2, 3, 4]))?.rows.length).toBe(8);
    expect(supervisedRows(batchWithMask(2, 8, [0, 1, 2, 3, 4, 5, 6, 7, 8]))).toBeUndefined();
    // Language modelling: every position supervised.
    expect(
      supervisedRows(
        batchWithMask(
          2,
          8,
          Array.from({ length: 16 }, (_, i) => i),
        ),
      ),
    ).toBeUndefined();
  });
});
