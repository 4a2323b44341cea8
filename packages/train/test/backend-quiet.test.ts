import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { hasVulkanLoader } from '@interleave/core';
import { describe, expect, it } from 'vitest';

// On a machine with a Vulkan loader but no GPU Dawn accepts (Mesa's lavapipe: Dawn rejects it),
// Dawn prints adapter warnings with native stack lines while `auto` looks for a GPU. The CLI must
// pass over webgpu quietly, and say why in one line only when INTERLEAVE_DEBUG=1.
const CLI = resolve(import.meta.dirname, '../bin/interleave.mjs');
const LAVAPIPE_ICD = [process.env.VK_ICD_FILENAMES, '/usr/share/vulkan/icd.d/lvp_icd.x86_64.json'].find(
  (path) => path?.includes('lvp') && existsSync(path),
);

const TINY = `name: quiet
seed: 1
backend: auto
model:
  vocab_size: 16
  d_model: 8
  layers:
    - { block: swa, window: 4, heads: 2 }
task: { name: mqar, seq_len: 8, num_kv_pairs: 1, test_examples: 4 }
train: { steps: 1, batch_size: 2, optimizer: { name: adamw, lr: 1.0e-3 }, eval_every: 1, log_every: 1 }
tracking: { uri: ./mlruns, experiment: quiet }
`;

function trainOnLavapipe(extraEnv: Record<string, string>) {
  if (!hasVulkanLoader() || LAVAPIPE_ICD === undefined) {
    throw new Error(
      "needs a Vulkan loader and Mesa's lavapipe (a Vulkan device Dawn rejects): run scripts/install-webgpu-ci.sh",
    );
  }
  const dir = mkdtempSync(join(tmpdir(), 'interleave-quiet-'));
  writeFileSync(join(dir, 'quiet.yaml'), TINY);
  // Where the native TensorFlow backend is set up, `auto` would take it before ever looking for a
  // GPU: leave it out, so that webgpu is the backend `auto` tries first.
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    VK_ICD_FILENAMES: LAVAPIPE_ICD,
    INTERLEAVE_AUTO_SKIP: 'tensorflow',
    ...extraEnv,
  };
  delete env.INTERLEAVE_BACKEND;
  if (extraEnv.INTERLEAVE_DEBUG === undefined) delete env.INTERLEAVE_DEBUG;
  return spawnSync(process.execPath, [CLI, 'train', 'quiet.yaml'], { cwd: dir, encoding: 'utf8', env });
}

describe('auto passes over a GPU-less Vulkan quietly', () => {
  it('prints none of Dawn’s warnings', () => {
    const { status, stdout, stderr } = trainOnLavapipe({});
    expect(stderr).toBe('');
    expect(status).toBe(0);
    expect(stdout).toMatch(/^backend: (wasm|cpu|tensorflow)/m);
  });

  it('with INTERLEAVE_DEBUG=1, says in one line why webgpu was skipped', () => {
    const { status, stderr } = trainOnLavapipe({ INTERLEAVE_DEBUG: '1' });
    expect(status).toBe(0);
    const webgpuLines = stderr.split('\n').filter((line) => line.includes('webgpu'));
    expect(webgpuLines).toEqual([
      'backend: skipped webgpu: no usable GPU adapter (Dawn: Vulkan shaderUniform*ArrayDynamicIndexing required.)',
    ]);
    expect(stderr).not.toMatch(/^\s*at |Warning:/m);
  });
});
