import { SeededRandom } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { startWebgpuBackend } from '../../blocks/test/support/webgpu-device.js';
import { AdamW } from '../src/optimizer/adamw.js';
import { ADAMW_KERNEL, fusedAdamWAvailable } from '../src/optimizer/adamw-wgsl.js';

const OPTIONS = { betas: [0.9, 0.95] as const, eps: 1e-8, weightDecay: 0.1 };
const LEARNING_RATES = [1e-2, 5e-3, 2e-3];

interface Case {
  name: string;
  shape: number[];
  decay: boolean;
  initial: Float32Array;
  gradients: Float32Array[];
}

/** PyTorch's AdamW in float64: decoupled decay, then the bias-corrected Adam step. */
function reference({ initial, gradients, decay }: Case) {
  const p = Float64Array.from(initial);
  const m = new Float64Array(p.length);
  const v = new Float64Array(p.length);
  const [beta1, beta2] = OPTIONS.betas;
  gradients.forEach((g, index) => {
    const step = index + 1;
    const lr = LEARNING_RATES[index] as number;
    for (let i = 0; i < p.length; i++) {
      const gi = g[i] as number;
      m[i] = beta1 * (m[i] as number) + (1 - beta1) * gi;
      v[i] = beta2 * (v[i] as number) + (1 - beta2) * gi * gi;
      const decayed = decay ? (p[i] as number) * (1 - lr * OPTIONS.weightDecay) : (p[i] as number);
      const denominator = Math.sqrt((v[i] as number) / (1 - beta2 ** step)) + OPTIONS.eps;
      p[i] = decayed - ((m[i] as number) / denominator) * (lr / (1 - beta1 ** step));
    }
  });
  return { p, m, v };
}

let runs = 0;

async function train(cases: Case[]) {
  runs += 1;
  const parameters = cases.map(({ name, shape, decay, initial }) => ({
    name,
    decay,
    variable: tf.tidy(() => tf.variable(tf.tensor(initial, shape), true, `adamw-test-${name}-${runs}`)),
  }));
  const optimizer = new AdamW(parameters, OPTIONS);
  LEARNING_RATES.forEach((lr, step) => {
    const gradients = Object.fromEntries(
      cases.map(({ name, shape, gradients: g }) => [name, tf.tensor(g[step] as Float32Array, shape)]),
    );
    optimizer.apply(gradients, lr);
    tf.dispose(Object.values(gradients));
  });
  const moments = optimizer.stateTensors();
  const result = await Promise.all(
    parameters.map(async ({ name, variable }) => ({
      p: (await variable.data()) as Float32Array,
      m: (await (moments[`${name}.exp_avg`] as tf.Variable).data()) as Float32Array,
      v: (await (moments[`${name}.exp_avg_sq`] as tf.Variable).data()) as Float32Array,
    })),
  );
  optimizer.dispose();
  for (const { variable } of parameters) variable.dispose();
  return result;
}

function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let diff = 0;
  let scale = 1e-6;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs((actual[i] as number) - (expected[i] as number)));
    scale = Math.max(scale, Math.abs(expected[i] as number));
  }
  return diff / scale;
}

beforeAll(async () => {
  await startWebgpuBackend();
});

describe('AdamW WGSL update on webgpu = tf-op update = float64 reference', () => {
  it('matches over three steps, with and without weight decay', async () => {
    expect(fusedAdamWAvailable()).toBe(true);
    const rng = new SeededRandom(5, 'webgpu-adamw');
    const draw = (n: number, std: number) => Float32Array.from({ length: n }, () => rng.normal(0, std));
    const cases: Case[] = [
      { name: 'weight', shape: [17, 33], decay: true, initial: draw(561, 1), gradients: [] },
      { name: 'norm', shape: [300], decay: false, initial: draw(300, 1), gradients: [] },
    ];
    for (const entry of cases) {
      const size = entry.initial.length;
      entry.gradients = LEARNING_RATES.map(() => draw(size, 0.1));
    }
    const expected = cases.map(reference);
    const before = tf.memory().numTensors;
    const fused = await train(cases);
    expect(tf.memory().numTensors).toBe(before);
    // The tf-op path on the same backend: the kernel unregistered for one run.
    const kernel = tf.getKernel(ADAMW_KERNEL, 'webgpu') as tf.KernelConfig;
    tf.unregisterKernel(ADAMW_KERNEL, 'webgpu');
    let ops: Awaited<ReturnType<typeof train>>;
    try {
      ops = await train(cases);
    } finally {
      tf.registerKernel(kernel);
    }
    cases.forEach(({ name }, index) => {
      for (const [label, result] of [
        ['fused', fused],
        ['ops', ops],
      ] as const) {
        const actual = result[index] as { p: Float32Array; m: Float32Array; v: Float32Array };
        const want = expected[index] as { p: Float64Array; m: Float64Array; v: Float64Array };
        expect(relativeError(actual.p, want.p), `${label} ${name} parameter`).toBeLessThan(1e-6);
        expect(relativeError(actual.m, want.m), `${label} ${name} m`).toBeLessThan(1e-6);
        expect(relativeError(actual.v, want.v), `${label} ${name} v`).toBeLessThan(1e-5);
      }
    });
  });
});
