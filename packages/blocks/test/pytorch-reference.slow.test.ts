import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type BlockDefinition, selectBackend, type TensorRecord, writeSafetensorsFile } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensurePythonVenv, runCommand } from '../../core/test/support/python-venv.js';
import { deltanetBlock } from '../src/deltanet.js';
import { gatedDeltanetBlock } from '../src/gated-deltanet.js';
import { glaBlock } from '../src/gla.js';
import { mamba2Block } from '../src/mamba2.js';
import { buildBlockForTest } from '../src/testing/build.js';
import { inputRng, randomNormalArray } from '../src/testing/shared.js';

/**
 * Each chunked mixer against a plain PyTorch form written from its paper's equations
 * (`pytorch/reference_mixers.py`: token-by-token recurrences in float64) whose module tree is the
 * reference implementation's, so our parameters must load with strict=True — names, shapes and
 * layouts included. Random weights from our own init; chunks smaller than the sequence.
 */
const TORCH_REQUIREMENTS = ['torch==2.15.0', 'safetensors==0.8.0', 'numpy==2.4.6'];
const REFERENCE = resolve(import.meta.dirname, 'pytorch/reference_mixers.py');
const D_MODEL = 16;
const BATCH = 2;
const LENGTH = 11;
/** max |ours − reference| relative to max(1, max |reference|): float32 against float64. */
const TOLERANCE = 1e-4;

let python: string;
let work: string;

beforeAll(async () => {
  python = (await ensurePythonVenv('torch', TORCH_REQUIREMENTS)).python;
  work = mkdtempSync(join(tmpdir(), 'interleave-mixers-reference-'));
  await selectBackend('cpu');
}, 1_800_000);

interface Case {
  readonly name: string;
  readonly definition: BlockDefinition<never>;
  readonly config: Record<string, unknown>;
  /** The sizes the Python module needs, from the built block's config and parameter shapes. */
  options(config: Record<string, unknown>, shapes: Map<string, number[]>): Record<string, unknown>;
}

const rows = (shapes: Map<string, number[]>, name: string) => (shapes.get(name) as number[])[0] as number;

const deltaOptions = (config: Record<string, unknown>, shapes: Map<string, number[]>) => ({
  heads: config.heads,
  head_k_dim: rows(shapes, 'q_proj.weight') / (config.heads as number),
  head_v_dim: rows(shapes, 'o_norm.weight'),
  use_beta: config.use_beta ?? true,
  use_gate: config.use_gate,
  use_short_conv: config.use_short_conv,
  conv_size: config.conv_size,
  conv_bias: config.conv_bias,
  allow_neg_eigval: config.allow_neg_eigval,
  norm_eps: config.norm_eps,
});

const CASES: Case[] = [
  {
    name: 'mamba2',
    definition: mamba2Block as BlockDefinition<never>,
    config: { d_state: 4, headdim: 8, chunk_size: 4 },
    options: (config) => config,
  },
  {
    name: 'mamba2 with 2 groups and 4 heads',
    definition: mamba2Block as BlockDefinition<never>,
    config: { d_state: 6, headdim: 8, ngroups: 2, d_conv: 3, chunk_size: 3 },
    options: (config) => config,
  },
  {
    name: 'gla',
    definition: glaBlock as BlockDefinition<never>,
    config: { heads: 2, gate_low_rank_dim: 4, chunk_size: 4 },
    options: (config, shapes) => ({
      ...config,
      key_dim: rows(shapes, 'q_proj.weight'),
      value_dim: rows(shapes, 'v_proj.weight'),
    }),
  },
  {
    name: 'deltanet',
    definition: deltanetBlock as BlockDefinition<never>,
    config: { heads: 2, chunk_size: 4 },
    options: deltaOptions,
  },
  {
    name: 'deltanet with an output gate, no short convolutions, β ∈ (0, 2)',
    definition: deltanetBlock as BlockDefinition<never>,
    config: { heads: 2, use_gate: true, use_short_conv: false, allow_neg_eigval: true, chunk_size: 8 },
    options: deltaOptions,
  },
  {
    name: 'gated_deltanet',
    definition: gatedDeltanetBlock as BlockDefinition<never>,
    config: { heads: 2, conv_bias: true, chunk_size: 4 },
    options: deltaOptions,
  },
];

describe('chunked mixers against plain PyTorch forms of their references (float64)', () => {
  for (const testCase of CASES) {
    it(`${testCase.name}: strict load and the same outputs`, async () => {
      const block = buildBlockForTest(testCase.definition, testCase.config, { dModel: D_MODEL, seed: 3, scope: '' });
      const tensors: Record<string, TensorRecord> = {};
      const shapes = new Map<string, number[]>();
      for (const entry of block.store.list()) {
        const name = entry.name.replace(/^\./, '');
        shapes.set(name, entry.variable.shape);
        tensors[name] = {
          dtype: 'F32',
          shape: entry.variable.shape,
          data: (await entry.variable.data()) as Float32Array,
        };
      }
      const input = randomNormalArray(inputRng(1, 'pytorch-reference'), BATCH * LENGTH * D_MODEL);
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
      const config = block.config as Record<string, unknown>;
      const options = testCase.options(config, shapes);
      writeFileSync(caseFile, JSON.stringify({ block: testCase.definition.name, d_model: D_MODEL, options }));
      const run = await runCommand(python, [REFERENCE, tensorsFile, caseFile, resultFile]);
      expect(run.code, run.stderr).toBe(0);
      const result = JSON.parse(readFileSync(resultFile, 'utf8')) as {
        max_abs_error: number;
        max_abs_reference: number;
      };
      const relative = result.max_abs_error / Math.max(1, result.max_abs_reference);
      console.log(
        `${testCase.name}: max |ours − PyTorch float64| ${result.max_abs_error.toExponential(2)} ` +
          `(max |y| ${result.max_abs_reference.toFixed(3)})`,
      );
      expect(relative).toBeLessThan(TOLERANCE);
    });
  }
});
