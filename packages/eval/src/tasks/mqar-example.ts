import type { SeededRandom, TokenBatch } from '@interleave/core';

/** Everything that fixes the shape and statistics of an MQAR example. */
export interface MqarLayout {
  seqLen: number;
  numKvPairs: number;
  vocabSize: number;
  /** Gap slot g (1-based) is drawn with weight g^(powerA − 1); 1 = uniform. */
  powerA: number;
  randomNonQueries: boolean;
}

/** Token written at positions that carry no key, value or query when `randomNonQueries` is off. */
export const MQAR_PADDING_TOKEN = 0;

/**
 * Writes MQAR examples (docs/design.md#mqar) with the protocol of Zoology's `multiquery_ar`:
 *
 * - keys: K distinct tokens from [1, V/2); values: K distinct tokens from [V/2, V) (V/2 rounded
 *   down), so token 0 is never a key or a value;
 * - positions 0 .. 2K−1 hold k1 v1 k2 v2 ...;
 * - the rest of the sequence is split into (L − 2K)/2 slots at even offsets 0, 2, 4, ... after
 *   the context; K distinct slots are drawn, favouring early ones: slot g (1-based) has weight
 *   g^(power_a − 1), drawn one after another without replacement, and key i (in context order)
 *   takes the i-th slot drawn, as Zoology assigns them. Zoology's "gap" is thus the distance
 *   from the end of the context, not from the key's own pair;
 * - at a query position t: inputs[t] = key, targets[t] = its value, mask[t] = 1. Everything
 *   else has mask 0 and target 0 (a valid class, so losses built on one-hot never see −100).
 *
 * Every other position (the odd offsets and unused slots) gets a uniform token from the whole
 * vocabulary when `randomNonQueries` is on, as in Zoology, else token 0. Random fill may repeat
 * a key or a value after the context, even a key that is queried later, and may even put a
 * key just before a value-half token, which looks like a new binding. Zoology allows this and
 * so do we: the answer is always the value paired with the key in the first 2K positions
 * (where keys are distinct), so a model that knows the layout can still score 100%; the fill
 * only adds distractors, at positions that are never scored.
 */
export class MqarExampleWriter {
  private readonly contextLength: number;
  private readonly slotCount: number;
  private readonly keyPool: Int32Array;
  private readonly valuePool: Int32Array;
  /** Per slot g: −log weight = (1 − power_a)·log(g + 1), added to its log race time. */
  private readonly slotLogTimeOffset: Float64Array;
  // Scratch reused across examples, so generation does not allocate per example.
  private readonly keys: Int32Array;
  private readonly values: Int32Array;
  private readonly swaps: Int32Array;
  private readonly slotLogTimes: Float64Array;
  private readonly slotsInDrawOrder: Int32Array;

  constructor(private readonly layout: MqarLayout) {
    const { seqLen, numKvPairs, vocabSize, powerA } = layout;
    const half = Math.floor(vocabSize / 2);
    this.contextLength = 2 * numKvPairs;
    this.slotCount = (seqLen - this.contextLength) / 2;
    if (!Number.isInteger(this.slotCount) || this.slotCount < numKvPairs || half - 1 < numKvPairs) {
      throw new RangeError(`no room for an MQAR example with ${JSON.stringify(layout)}`);
    }
    this.keyPool = Int32Array.from({ length: half - 1 }, (_, i) => 1 + i);
    this.valuePool = Int32Array.from({ length: vocabSize - half }, (_, i) => half + i);
    this.slotLogTimeOffset = Float64Array.from({ length: this.slotCount }, (_, g) => (1 - powerA) * Math.log(g + 1));
    this.keys = new Int32Array(numKvPairs);
    this.values = new Int32Array(numKvPairs);
    this.swaps = new Int32Array(numKvPairs);
    this.slotLogTimes = new Float64Array(this.slotCount);
    this.slotsInDrawOrder = new Int32Array(this.slotCount);
  }

  /** Fills row `row` of `batch` with the example whose randomness is `rng`. */
  write(rng: SeededRandom, batch: TokenBatch, row: number): void {
    const { seqLen, numKvPairs, vocabSize, randomNonQueries } = this.layout;
    const { keys, values, contextLength } = this;
    sampleDistinct(this.keyPool, numKvPairs, rng, keys, this.swaps);
    sampleDistinct(this.valuePool, numKvPairs, rng, values, this.swaps);
    const slots = this.drawQuerySlots(rng);

    const offset = row * seqLen;
    const inputs = batch.inputs.subarray(offset, offset + seqLen);
    const targets = batch.targets.subarray(offset, offset + seqLen);
    const mask = batch.mask.subarray(offset, offset + seqLen);
    targets.fill(0);
    mask.fill(0);
    for (let i = 0; i < numKvPairs; i++) {
      inputs[2 * i] = keys[i] as number;
      inputs[2 * i + 1] = values[i] as number;
    }
    for (let t = contextLength; t < seqLen; t++) {
      inputs[t] = randomNonQueries ? rng.int(vocabSize) : MQAR_PADDING_TOKEN;
    }
    for (let i = 0; i < numKvPairs; i++) {
      const position = contextLength + 2 * (slots[i] as number);
      inputs[position] = keys[i] as number;
      targets[position] = values[i] as number;
      mask[position] = 1;
    }
  }

  /**
   * Successive weighted sampling without replacement (what numpy's `choice(replace=False, p=…)`
   * amounts to), done as a race: slot g finishes at Exp(1) / weight_g, and the finishing order
   * is distributed exactly as drawing slots one by one ∝ weight among those left. Times are
   * compared as logarithms so that no power_a can underflow them into ties, and unlike
   * draw-and-reject the cost does not blow up when K is close to the slot count.
   */
  private drawQuerySlots(rng: SeededRandom): Int32Array {
    const { slotLogTimes, slotLogTimeOffset, slotsInDrawOrder } = this;
    for (let g = 0; g < this.slotCount; g++) {
      slotLogTimes[g] = Math.log(-Math.log(1 - rng.next())) + (slotLogTimeOffset[g] as number);
      slotsInDrawOrder[g] = g;
    }
    sortSmallestFirst(slotsInDrawOrder, slotLogTimes, 0, this.slotCount, this.layout.numKvPairs);
    return slotsInDrawOrder;
  }
}

// Below this many items insertion sort beats partitioning.
const INSERTION_SORT_LIMIT = 16;

/**
 * Reorders `order[lo, hi)` so that its first `needed − lo` entries are the indices of the
 * smallest `keys`, ascending; the rest stay unsorted. A partial quicksort: hand-written because
 * `Int32Array.prototype.sort` with a comparator was about three times slower here, and MQAR
 * needs only the first K of (L − 2K)/2 slots.
 */
function sortSmallestFirst(order: Int32Array, keys: Float64Array, lo: number, hi: number, needed: number): void {
  while (hi - lo > INSERTION_SORT_LIMIT) {
    const pivot = keys[order[(lo + hi) >>> 1] as number] as number;
    let i = lo;
    let j = hi - 1;
    while (i <= j) {
      while ((keys[order[i] as number] as number) < pivot) i++;
      while ((keys[order[j] as number] as number) > pivot) j--;
      if (i <= j) {
        const swapped = order[i] as number;
        order[i++] = order[j] as number;
        order[j--] = swapped;
      }
    }
    // Now [lo, j] ≤ pivot ≤ [i, hi), and anything between equals the pivot.
    if (i < needed) sortSmallestFirst(order, keys, i, hi, needed);
    hi = j + 1;
  }
  for (let i = lo + 1; i < hi; i++) {
    const item = order[i] as number;
    const key = keys[item] as number;
    let j = i - 1;
    while (j >= lo && (keys[order[j] as number] as number) > key) {
      order[j + 1] = order[j] as number;
      j--;
    }
    order[j + 1] = item;
  }
}

/**
 * Writes `count` distinct uniform picks from `pool` into `out` by a partial Fisher–Yates
 * shuffle, then undoes the swaps so the pool is back in its initial order: what an example
 * draws must depend only on its own stream, not on the examples generated before it.
 */
function sampleDistinct(pool: Int32Array, count: number, rng: SeededRandom, out: Int32Array, swaps: Int32Array): void {
  for (let i = 0; i < count; i++) {
    const j = i + rng.int(pool.length - i);
    swaps[i] = j;
    const picked = pool[j] as number;
    pool[j] = pool[i] as number;
    pool[i] = picked;
    out[i] = picked;
  }
  for (let i = count - 1; i >= 0; i--) {
    const j = swaps[i] as number;
    const item = pool[j] as number;
    pool[j] = pool[i] as number;
    pool[i] = item;
  }
}

/** A zero-filled batch of `batchSize` rows of `seqLen` tokens. */
export function emptyTokenBatch(batchSize: number, seqLen: number): TokenBatch {
  const size = batchSize * seqLen;
  return {
    batchSize,
    seqLen,
    inputs: new Int32Array(size),
    targets: new Int32Array(size),
    mask: new Float32Array(size),
  };
}
