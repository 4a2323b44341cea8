import { SeededRandom } from '@interleave/core';

type GeneratorState = [number, number, number, number];

// Odd 32-bit constants (the xxHash primes); one per state word so the four words are derived
// differently from the same index.
const LOW_MULTIPLIERS = [0x9e3779b1, 0x85ebca77, 0xc2b2ae3d, 0x27d4eb2f] as const;
const HIGH_MULTIPLIERS = [0x165667b1, 0xd3a2646d, 0xfd7046c5, 0xb55a4f09] as const;

/**
 * A family of independent random streams, one per item 0, 1, 2, ... of a named sequence (train
 * example i, the order of epoch e). Each item's stream can be opened on its own, so items are
 * generated lazily, in any order, and identically after a resume.
 *
 * Why not `new SeededRandom(seed, `${label}/${i}`)`: that constructor folds seed and label into
 * 32 bits, so among 100k train examples some pairs would share a state (birthday bound), and
 * a test example would equal some train example with probability ~2% per 1k test examples.
 * Here every item gets its own 128-bit state: distinct indices of one family never collide,
 * and items of two families (train vs test) coincide only if all four words do.
 */
export class IndexedStreams {
  private readonly base: GeneratorState;

  constructor(seed: number, label: string) {
    this.base = new SeededRandom(seed, label).getState();
  }

  /**
   * A generator at the start of item `index`'s stream: `into` when given (its state replaced, so
   * a batch of examples reuses one generator instead of making one per example), else a new one.
   */
  open(index: number, into?: SeededRandom): SeededRandom {
    if (!Number.isSafeInteger(index) || index < 0) {
      throw new RangeError(`stream index must be a non-negative integer, got ${index}`);
    }
    const low = index >>> 0;
    const high = Math.floor(index / 2 ** 32) >>> 0;
    const state: GeneratorState = [0, 0, 0, 0];
    for (let k = 0; k < 4; k++) {
      // Each round is a bijection of its input, so for a fixed `high` word k alone is already
      // injective in `low`: no two items of one family share a state.
      const mixedLow = fmix32(((this.base[k] as number) ^ Math.imul(low, LOW_MULTIPLIERS[k] as number)) >>> 0);
      state[k] = fmix32((mixedLow ^ Math.imul(high, HIGH_MULTIPLIERS[k] as number)) >>> 0);
    }
    // xoshiro never leaves the all-zero state; astronomically unlikely, but cheap to rule out.
    if (state[0] === 0 && state[1] === 0 && state[2] === 0 && state[3] === 0) state[0] = 1;
    const rng = into ?? new SeededRandom(0);
    rng.setState(state);
    return rng;
  }
}

/** MurmurHash3's finaliser: a bijection on 32-bit words with good avalanche. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
