import type { Initializer } from './parameter-store.js';

const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export const normalInit =
  (std: number): Initializer =>
  (rng, shape) =>
    Float32Array.from({ length: sizeOf(shape) }, () => rng.normal(0, std));

export const uniformInit =
  (low: number, high: number): Initializer =>
  (rng, shape) =>
    Float32Array.from({ length: sizeOf(shape) }, () => rng.uniform(low, high));

export const constantInit =
  (value: number): Initializer =>
  (_rng, shape) =>
    new Float32Array(sizeOf(shape)).fill(value);

/** PyTorch's default for nn.Linear/nn.Conv1d weights: U(−1/√fanIn, 1/√fanIn). */
export const fanInUniformInit = (fanIn: number): Initializer =>
  uniformInit(-1 / Math.sqrt(fanIn), 1 / Math.sqrt(fanIn));

/** Values computed from each element's row-major index. */
export const indexedInit =
  (valueAt: (index: number) => number): Initializer =>
  (_rng, shape) =>
    Float32Array.from({ length: sizeOf(shape) }, (_, index) => valueAt(index));
