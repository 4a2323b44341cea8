import { SeededRandom } from '@interleave/core';

/** The selective scan's float64 reference and random Mamba-like inputs, shared by the CPU and WGSL kernel tests. */
export interface Shape {
  batch: number;
  length: number;
  dInner: number;
  dState: number;
}
export interface FlatInputs {
  x: Float32Array;
  dt: Float32Array;
  a: Float32Array;
  b: Float32Array;
  c: Float32Array;
}
export type InputName = keyof FlatInputs;
export const INPUT_NAMES: InputName[] = ['x', 'dt', 'a', 'b', 'c'];

/**
 * Mamba's recurrence (docs/design.md, Mamba block) written as plainly as possible in float64, one channel at a time, with
 * the gradients of the loss Σ y ⊙ w by reverse accumulation:
 *   gh_t = w_t C_t + exp(Δ_{t+1} A) gh_{t+1}.
 */
export function sequentialReference(inputs: FlatInputs, w: Float32Array, shape: Shape) {
  const { batch, length, dInner, dState } = shape;
  const { x, dt, a, b, c } = inputs;
  const y = new Float64Array(x.length);
  const grads = Object.fromEntries(INPUT_NAMES.map((name) => [name, new Float64Array(inputs[name].length)])) as Record<
    InputName,
    Float64Array
  >;
  const seq = (bi: number, t: number, d: number) => (bi * length + t) * dInner + d;
  const bc = (bi: number, t: number, n: number) => (bi * length + t) * dState + n;
  for (let bi = 0; bi < batch; bi++) {
    for (let d = 0; d < dInner; d++) {
      for (let n = 0; n < dState; n++) {
        const A = a[d * dState + n] as number;
        const h: number[] = [];
        for (let t = 0; t < length; t++) {
          const delta = dt[seq(bi, t, d)] as number;
          const previous = t > 0 ? (h[t - 1] as number) : 0;
          h[t] = Math.exp(delta * A) * previous + delta * (x[seq(bi, t, d)] as number) * (b[bc(bi, t, n)] as number);
          y[seq(bi, t, d)] = (y[seq(bi, t, d)] as number) + (h[t] as number) * (c[bc(bi, t, n)] as number);
        }
        let gh = 0;
        for (let t = length - 1; t >= 0; t--) {
          const i = seq(bi, t, d);
          const j = bc(bi, t, n);
          const delta = dt[i] as number;
          const previous = t > 0 ? (h[t - 1] as number) : 0;
          const decay = Math.exp(delta * A);
          const g = gh + (w[i] as number) * (c[j] as number);
          grads.c[j] = (grads.c[j] as number) + (w[i] as number) * (h[t] as number);
          grads.b[j] = (grads.b[j] as number) + g * delta * (x[i] as number);
          grads.x[i] = (grads.x[i] as number) + g * delta * (b[j] as number);
          grads.dt[i] = (grads.dt[i] as number) + g * (A * decay * previous + (x[i] as number) * (b[j] as number));
          grads.a[d * dState + n] = (grads.a[d * dState + n] as number) + g * delta * decay * previous;
          gh = g * decay;
        }
      }
    }
  }
  return { y, grads };
}

export function draw(length: number, sample: (rng: SeededRandom) => number, seed: number): Float32Array {
  const rng = new SeededRandom(seed, 'selective-scan-test');
  return Float32Array.from({ length }, () => sample(rng));
}

/** Random inputs as Mamba produces them: Δ = softplus(·)·scale, A = −exp(·). */
export function randomInputs(shape: Shape, dtScale: number): FlatInputs {
  const { batch, length, dInner, dState } = shape;
  const softplus = (v: number) => Math.log1p(Math.exp(v));
  return {
    x: draw(batch * length * dInner, (rng) => rng.normal(), 1),
    dt: draw(batch * length * dInner, (rng) => softplus(rng.normal()) * dtScale, 2),
    a: draw(dInner * dState, (rng) => -Math.exp(rng.normal()), 3),
    b: draw(batch * length * dState, (rng) => rng.normal(), 4),
    c: draw(batch * length * dState, (rng) => rng.normal(), 5),
  };
}

/** Largest |actual − expected| relative to max(1, max |expected|). */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let diff = 0;
  let scale = 1;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs((actual[i] as number) - (expected[i] as number)));
    scale = Math.max(scale, Math.abs(expected[i] as number));
  }
  return diff / scale;
}
