import { join, resolve } from 'node:path';
import { rglruBlock } from '@interleave/blocks';
import { buildBlockForTest } from '@interleave/blocks/testing';
import { type ResolvedLayer, readSafetensorsFile, SeededRandom, writeSafetensorsFile } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensurePythonVenv, runCommand } from '../../core/test/support/python-venv.js';
import { tensorRecords } from '../src/checkpoint/checkpoint.js';
import { toRecurrentGemmaLayout } from '../src/checkpoint/recurrentgemma-layout.js';
import { maxAbsDifference, temporaryDirectory } from './export-fixtures.js';

// The same pinned venv as export-pytorch.slow.test.ts (PyPI's torch: about 5.4 GB).
const TORCH_REQUIREMENTS = ['torch==2.15.0', 'safetensors==0.8.0', 'numpy==2.4.6'];
const REFERENCE = resolve(import.meta.dirname, 'pytorch/reference_recurrent_block.py');
const TOLERANCE = 1e-4;
const [BATCH, LENGTH, WIDTH] = [2, 12, 16];

let python: string;
let work: string;
let weightsFile: string;
let inputsFile: string;
let ours: Float32Array;

beforeAll(async () => {
  python = (await ensurePythonVenv('torch', TORCH_REQUIREMENTS)).python;
  await tf.setBackend('cpu');
  work = temporaryDirectory();
  // An RG-LRU block with 2 gate heads and random (not initial) weights, so every parameter matters.
  const block = buildBlockForTest(rglruBlock, { d_rnn: 24, heads: 2 }, { dModel: WIDTH, seed: 3 });
  const rng = new SeededRandom(4, 'recurrentgemma-pytorch');
  for (const { variable } of block.store.list()) {
    const values = Float32Array.from({ length: variable.size }, () => rng.normal(0, 0.3));
    tf.tidy(() => variable.assign(tf.tensor(values, variable.shape)));
  }
  const x = Float32Array.from({ length: BATCH * LENGTH * WIDTH }, () => rng.normal(0, 1));
  ours = tf.tidy(() => block.mixer.forward(tf.tensor3d(x, [BATCH, LENGTH, WIDTH])).dataSync() as Float32Array);
  // Our names as a model has them (layers.0.mixer.*), then recurrentgemma's.
  const variables = Object.fromEntries(
    block.store.list().map(({ name, variable }) => [`layers.0.${name}`, variable as tf.Tensor]),
  );
  const layers = [{ block: rglruBlock, config: block.config, mlp: null, path: [] }] as unknown as ResolvedLayer[];
  weightsFile = join(work, 'recurrentgemma.safetensors');
  await writeSafetensorsFile(weightsFile, toRecurrentGemmaLayout(await tensorRecords(variables), layers));
  inputsFile = join(work, 'inputs.safetensors');
  await writeSafetensorsFile(inputsFile, { x: { dtype: 'F32', shape: [BATCH, LENGTH, WIDTH], data: x } });
  block.dispose();
}, 1_800_000);

async function reference(gelu: 'exact' | 'tanh') {
  const out = join(work, `y-${gelu}.safetensors`);
  const args = [REFERENCE, '--weights', weightsFile, '--prefix', 'blocks.0.recurrent_block.'];
  const result = await runCommand(python, [...args, '--inputs', inputsFile, '--out', out, '--gelu', gelu]);
  if (result.code !== 0)
    throw new Error(`reference_recurrent_block.py failed (exit ${result.code}):\n${result.stderr}`);
  const report = JSON.parse(result.stdout.trim().split('\n').at(-1) as string) as {
    state_dict: Record<string, number[]>;
  };
  return { report, y: (await readSafetensorsFile(out)).tensors.y?.data as Float64Array };
}

describe("PyTorch: recurrentgemma's RecurrentBlock tree", () => {
  it('loads the --layout recurrentgemma tensors with strict=True and reproduces our block', async () => {
    const { report, y } = await reference('exact');
    const { tensors } = await readSafetensorsFile(weightsFile);
    const exported = Object.fromEntries(
      Object.entries(tensors).map(([name, tensor]) => [name.replace('blocks.0.recurrent_block.', ''), tensor.shape]),
    );
    expect(report.state_dict).toEqual(exported);
    expect(maxAbsDifference(ours, y)).toBeLessThanOrEqual(TOLERANCE);
    expect(maxAbsDifference(ours, new Float32Array(ours.length))).toBeGreaterThan(0.1);
  });

  it("differs only by the GeLU approximation from recurrentgemma's tanh form", async () => {
    const { y } = await reference('tanh');
    const difference = maxAbsDifference(ours, y);
    // Visible, but small: the tanh form is within ~1e-3 of erf's GeLU.
    expect(difference).toBeGreaterThan(TOLERANCE);
    expect(difference).toBeLessThan(0.05);
  });
});
