import { afterEach, describe, expect, it } from 'vitest';
// @ts-expect-error: a plain JavaScript build script, without type declarations
import { compileSelectiveScanWasm } from '../scripts/build-scan-simd.mjs';
import {
  simdScanApplies,
  simdSelectiveScanBackward,
  simdSelectiveScanForward,
} from '../src/scan/kernels/simd/selective-scan-simd.js';
import { SELECTIVE_SCAN_WASM_BASE64 } from '../src/scan/kernels/simd/selective-scan-wasm-binary.js';
import {
  draw,
  INPUT_NAMES,
  randomInputs,
  relativeError,
  sequentialReference,
} from './support/selective-scan-reference.js';

const savedSimd = process.env.INTERLEAVE_SCAN_SIMD;
afterEach(() => {
  if (savedSimd === undefined) delete process.env.INTERLEAVE_SCAN_SIMD;
  else process.env.INTERLEAVE_SCAN_SIMD = savedSimd;
});

describe('the WebAssembly SIMD selective scan', () => {
  it('is committed as compiled from its WebAssembly text (pnpm --filter @interleave/blocks build:scan-simd)', async () => {
    expect(await compileSelectiveScanWasm()).toBe(SELECTIVE_SCAN_WASM_BASE64);
  });

  it('applies where d_state is a multiple of 4 unless INTERLEAVE_SCAN_SIMD=off, and rejects other settings', () => {
    delete process.env.INTERLEAVE_SCAN_SIMD;
    const dims = { batch: 2, length: 8, dInner: 3, dState: 16 };
    expect(simdScanApplies(dims)).toBe(true);
    expect(simdScanApplies({ ...dims, dState: 6 })).toBe(false);
    process.env.INTERLEAVE_SCAN_SIMD = 'off';
    expect(simdScanApplies(dims)).toBe(false);
    process.env.INTERLEAVE_SCAN_SIMD = 'fast';
    expect(() => simdScanApplies(dims)).toThrow("INTERLEAVE_SCAN_SIMD must be 'on' or 'off', got 'fast'");
  });

  it.each([
    ['several channel blocks, one partial', { batch: 3, length: 37, dInner: 19, dState: 8 }, 1],
    ['the demo width, large Δ', { batch: 2, length: 16, dInner: 128, dState: 16 }, 50],
  ])('matches the float64 reference in value and all five gradients (%s)', (_label, shape, dtScale) => {
    const inputs = randomInputs(shape, dtScale);
    const dy = draw(shape.batch * shape.length * shape.dInner, (rng) => rng.normal(), 9);
    const reference = sequentialReference(inputs, dy, shape);
    const y = new Float32Array(dy.length).fill(Number.NaN);
    simdSelectiveScanForward(inputs, shape, y);
    expect(relativeError(y, reference.y)).toBeLessThan(1e-5);
    // Outputs hold stale values on purpose: the kernel must overwrite (dx, dΔ, dA) or zero (dB, dC) them.
    const grads = Object.fromEntries(
      INPUT_NAMES.map((name) => [name, new Float32Array(inputs[name].length).fill(7)]),
    ) as Record<(typeof INPUT_NAMES)[number], Float32Array>;
    simdSelectiveScanBackward({ ...inputs, dy }, shape, {
      dx: grads.x,
      ddt: grads.dt,
      da: grads.a,
      db: grads.b,
      dc: grads.c,
    });
    for (const name of INPUT_NAMES) {
      expect(relativeError(grads[name], reference.grads[name]), `d${name}`).toBeLessThan(1e-5);
    }
  });
});
