import type { IndexedStreams } from './indexed-streams.js';

// A batch straddles at most two epochs unless it is larger than the whole set; keeping two
// permutations makes the common case compute each epoch's order once.
const CACHED_EPOCHS = 2;

/**
 * Visits a finite set of `size` items in epochs, each epoch in its own seeded random order
 * (epoch e shuffled by stream e), so position p → item is a pure function of (seed, p).
 */
export class EpochOrder {
  private readonly permutations = new Map<number, Uint32Array>();

  constructor(
    readonly size: number,
    private readonly streams: IndexedStreams,
  ) {
    if (!Number.isSafeInteger(size) || size < 1) throw new RangeError(`epoch size must be ≥ 1, got ${size}`);
  }

  /** The item visited at global position `position` (0, 1, 2, ... counted across epochs). */
  itemAt(position: number): number {
    const epoch = Math.floor(position / this.size);
    return this.permutation(epoch)[position - epoch * this.size] as number;
  }

  private permutation(epoch: number): Uint32Array {
    const cached = this.permutations.get(epoch);
    if (cached !== undefined) return cached;
    const order = new Uint32Array(this.size);
    for (let i = 0; i < this.size; i++) order[i] = i;
    const rng = this.streams.open(epoch);
    for (let i = this.size - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      const item = order[i] as number;
      order[i] = order[j] as number;
      order[j] = item;
    }
    if (this.permutations.size >= CACHED_EPOCHS) {
      const oldest = this.permutations.keys().next().value as number;
      this.permutations.delete(oldest);
    }
    this.permutations.set(epoch, order);
    return order;
  }
}
