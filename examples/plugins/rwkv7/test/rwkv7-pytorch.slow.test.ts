import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { buildBlockForTest } from '@interleave/blocks/testing';
import { SeededRandom, selectBackend, type TensorRecord, writeSafetensorsFile } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
// The repository's shared test helper for pinned Python venvs (test-only; the plugin's runtime
// code uses the public @interleave/* API alone). Same venv and pins as the built-in mixers' check.
import { ensurePythonVenv, runCommand } from '../../../../packages/core/test/support/python-venv.js';
import { rwkv7Block, rwkv7Layout, rwkv7Schema } from '../src/index.js';

/**
 * The block against a plain PyTorch form of RWKV-7 (`pytorch/reference_rwkv7.py`: the official
 * decay form, RWKV-7's S [V, K] layout, token by token in float64) whose module tree is fla's
 * `RWKV7Attention` at layer 0, so our parameters load with strict=True. Random weights (`fan_in`,
 * every path non-zero), chunks smaller than the sequence.
 */
const TORCH_REQUIREMENTS = ['torch==2.15.0', 'safetensors==0.8.0', 'numpy==2.4.6'];
const REFERENCE = resolve(import.meta.dirname, 'pytorch/reference_rwkv7.py');
const D_MODEL = 16;
const BATCH = 2;
const LENGTH = 11;
/** max |ours − reference| relative to max(1, max |reference|): float32 against float64. */
const TOLERANCE = 1e-4;

let python: string;
let work: string;

beforeAll(async () => {
  python = (await ensurePythonVenv('torch', TORCH_REQUIREMENTS)).python;
  work = mkdtempSync(join(tmpdir(), 'interleave-rwkv7-reference-'));
  await selectBackend('cpu');
}, 1_800_000);

const CASES: { name: string; config: Record<string, unknown>; checkReferenceInit?: boolean }[] = [
  {
    name: 'two heads, chunks of 4',
    config: { heads: 2, decay_low_rank_dim: 4, a_low_rank_dim: 3, gate_low_rank_dim: 5, chunk_size: 4, init: 'fan_in' },
  },
  { name: "one head, fla's automatic ranks, chunks of 8", config: { heads: 1, chunk_size: 8, init: 'fan_in' } },
  // fla's layer-0 init: the parameters are compared with fla's formulas (the output is 0: o_proj is).
  { name: 'the reference init, two heads', config: { heads: 2, chunk_size: 4 }, checkReferenceInit: true },
];

describe('rwkv7 against a plain PyTorch RWKV-7 (float64)', () => {
  for (const testCase of CASES) {
    it(`${testCase.name}: strict load and the same outputs`, async () => {
      const block = buildBlockForTest(rwkv7Block, testCase.config, { dModel: D_MODEL, seed: 5, scope: '' });
      const tensors: Record<string, TensorRecord> = {};
      for (const entry of block.store.list()) {
        const name = entry.name.replace(/^\./, '');
        tensors[name] = {
          dtype: 'F32',
          shape: entry.variable.shape,
          data: (await entry.variable.data()) as Float32Array,
        };
      }
      const rng = new SeededRandom(1, 'rwkv7-pytorch-reference');
      const input = Float32Array.from({ length: BATCH * LENGTH * D_MODEL }, () => rng.normal(0, 1));
      const x = tf.tensor3d(input, [BATCH, LENGTH, D_MODEL]);
      const y = block.mixer.forward(x);
      tensors.x = { dtype: 'F32', shape: [BATCH, LENGTH, D_MODEL], data: input };
      tensors.y = { dtype: 'F32', shape: [BATCH, LENGTH, D_MODEL], data: (await y.data()) as Float32Array };
      tf.dispose([x, y]);
      block.dispose();

      const tag = testCase.name.replace(/[^a-z0-9]+/gi, '-');
      const tensorsFile = join(work, `${tag}.safetensors`);
      const caseFile = join(work, `${tag}.json`);
      const resultFile = join(work, `${tag}-result.json`);
      await writeSafetensorsFile(tensorsFile, tensors);
      const config = rwkv7Schema.parse(testCase.config);
      const layout = rwkv7Layout(config, D_MODEL);
      const sizes = {
        d_model: D_MODEL,
        heads: layout.heads,
        decay_rank: layout.decayRank,
        a_rank: layout.aRank,
        gate_rank: layout.gateRank,
        norm_eps: config.norm_eps,
        check_reference_init: testCase.checkReferenceInit === true,
      };
      writeFileSync(caseFile, JSON.stringify(sizes));
      const run = await runCommand(python, [REFERENCE, tensorsFile, caseFile, resultFile]);
      expect(run.code, run.stderr).toBe(0);
      const result = JSON.parse(readFileSync(resultFile, 'utf8')) as {
        init_error: number | null;
        init_worst: string | null;
        max_abs_error: number;
        max_abs_reference: number;
      };
      if (testCase.checkReferenceInit) {
        console.log(
          `rwkv7 reference init: max |ours − fla's formulas| ${result.init_error?.toExponential(2)} (${result.init_worst})`,
        );
        expect(result.init_error).toBeLessThan(1e-6);
        expect(result.max_abs_reference).toBe(0);
        return;
      }
      console.log(
        `rwkv7 (${testCase.name}): max |ours − PyTorch float64| ${result.max_abs_error.toExponential(2)} ` +
          `(max |y| ${result.max_abs_reference.toFixed(3)})`,
      );
      expect(result.max_abs_reference).toBeGreaterThan(0.05);
      expect(result.max_abs_error / Math.max(1, result.max_abs_reference)).toBeLessThan(TOLERANCE);
    });
  }
});
