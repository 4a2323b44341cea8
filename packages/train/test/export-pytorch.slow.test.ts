import { join, resolve } from 'node:path';
import { readSafetensorsFile, writeSafetensorsFile } from '@interleave/core';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { ensurePythonVenv, runCommand } from '../../core/test/support/python-venv.js';
import { MODEL_FILE } from '../src/checkpoint/checkpoint.js';
import { exportCheckpoint } from '../src/checkpoint/export-weights.js';
import { loadModelFromCheckpoint } from '../src/checkpoint/load-model.js';
import type { WeightLayout } from '../src/checkpoint/weight-layouts.js';
import { importCommand } from '../src/cli/commands/import.js';
import {
  logitsOf,
  maxAbsDifference,
  PURE_MAMBA_CONFIG,
  TOKENS,
  temporaryDirectory,
  trainTinyRun,
} from './export-fixtures.js';

// PyPI's Linux torch is the CUDA build: with its nvidia-* wheels the venv is about 5.4 GB, and
// it installs in about 1.5 minutes here. It runs on the CPU all the same.
const TORCH_REQUIREMENTS = ['torch==2.15.0', 'safetensors==0.8.0', 'numpy==2.4.6'];
const REFERENCE = resolve(import.meta.dirname, 'pytorch/reference_mamba.py');
const TOLERANCE = 1e-4;

let python: string;
let work: string;
let runDirectory: string;
let ourLogits: Float32Array;
let tokensFile: string;

beforeAll(async () => {
  const [venv, run] = await Promise.all([
    ensurePythonVenv('torch', TORCH_REQUIREMENTS),
    (async () => {
      work = temporaryDirectory();
      return trainTinyRun(PURE_MAMBA_CONFIG, work);
    })(),
  ]);
  python = venv.python;
  runDirectory = run;
  const loaded = await loadModelFromCheckpoint(runDirectory);
  ourLogits = logitsOf(loaded.model);
  loaded.model.dispose();
  tokensFile = join(work, 'tokens.safetensors');
  await writeSafetensorsFile(tokensFile, {
    tokens: { dtype: 'I32', shape: [TOKENS.length, TOKENS[0]?.length ?? 0], data: Int32Array.from(TOKENS.flat()) },
  });
}, 1_800_000);

interface ReferenceReport {
  layout: WeightLayout;
  torch: string;
  state_dict: Record<string, number[]>;
}

/** Runs the reference: strict load, logits, then logits and weights after perturbing every weight. */
async function runReference(weights: string, tag: string) {
  const out = join(work, `${tag}-result.safetensors`);
  const perturbedWeights = join(work, `${tag}-from-torch.safetensors`);
  const result = await runCommand(python, [
    REFERENCE,
    '--weights',
    weights,
    '--tokens',
    tokensFile,
    '--out',
    out,
    '--perturb',
    '7',
    '--save-weights',
    perturbedWeights,
  ]);
  if (result.code !== 0) throw new Error(`reference_mamba.py failed (exit ${result.code}):\n${result.stderr}`);
  const report = JSON.parse(result.stdout.trim().split('\n').at(-1) as string) as ReferenceReport;
  const { tensors } = await readSafetensorsFile(out);
  return {
    report,
    logits: tensors.logits?.data as Float64Array,
    perturbedLogits: tensors.perturbed_logits?.data as Float64Array,
    perturbedWeights,
  };
}

async function shapesInFile(file: string): Promise<Record<string, number[]>> {
  const { tensors } = await readSafetensorsFile(file);
  return Object.fromEntries(Object.entries(tensors).map(([name, tensor]) => [name, tensor.shape]));
}

describe.each(['mamba_ssm', 'interleave'] as const)('PyTorch reference, %s layout', (layout) => {
  it('loads our export with strict=True, reproduces our logits, and its own weights load back into ours', async () => {
    const exported = join(work, `${layout}.safetensors`);
    await exportCheckpoint(runDirectory, exported, { layout });
    const reference = await runReference(exported, layout);

    expect(reference.report.layout).toBe(layout);
    expect(reference.report.state_dict).toEqual(await shapesInFile(exported));
    expect(maxAbsDifference(ourLogits, reference.logits)).toBeLessThanOrEqual(TOLERANCE);
    // A tolerance means something only against logits well above it.
    expect(maxAbsDifference(ourLogits, new Float32Array(ourLogits.length))).toBeGreaterThan(0.1);

    // PyTorch's file has no Interleave metadata: the run's config says which model it is.
    const config = join(runDirectory, 'artifacts/config.yaml');
    const back = await loadModelFromCheckpoint(reference.perturbedWeights, { config });
    expect(back.layout).toBe(layout);
    const logits = logitsOf(back.model);
    back.model.dispose();
    expect(maxAbsDifference(reference.perturbedLogits, reference.logits)).toBeGreaterThan(0.01);
    expect(maxAbsDifference(logits, reference.perturbedLogits)).toBeLessThanOrEqual(TOLERANCE);
  });
});

describe('interleave import', () => {
  it("turns PyTorch's weights into a checkpoint that loads without a config", async () => {
    const exported = join(work, 'import-source.safetensors');
    await exportCheckpoint(runDirectory, exported, { layout: 'mamba_ssm' });
    const reference = await runReference(exported, 'import');
    const out = join(work, 'imported');
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      const args = [reference.perturbedWeights, '--config', join(runDirectory, 'artifacts/config.yaml'), '--out', out];
      expect(await importCommand.run(args)).toBe(0);
    } finally {
      write.mockRestore();
    }
    const imported = await loadModelFromCheckpoint(out);
    const logits = logitsOf(imported.model);
    imported.model.dispose();
    expect(imported.weightsFile).toBe(join(out, MODEL_FILE));
    expect(maxAbsDifference(logits, reference.perturbedLogits)).toBeLessThanOrEqual(TOLERANCE);
  });
});
