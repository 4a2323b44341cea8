import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { interleaveSync } from './sweep-support.js';

const REPOSITORY = resolve(import.meta.dirname, '../../..');
// Inside the workspace (so that @interleave/* resolve as they would for a package in it), in
// the git-ignored tmp/ folder.
const SCRATCH = join(REPOSITORY, 'tmp');
mkdirSync(SCRATCH, { recursive: true });
const root = mkdtempSync(join(SCRATCH, 'new-block-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('interleave new-block', () => {
  const out = join(root, 'wave-mixer');
  const generated = interleaveSync(['new-block', 'wave_mixer', '--out', out], REPOSITORY);

  it('writes a plugin package that depends only on the public @interleave/* API', () => {
    expect(generated.stderr).toBe('');
    expect(generated.status).toBe(0);
    expect(generated.stdout).toMatch(
      /^wrote 7 files to .*: block 'wave_mixer' in package interleave-block-wave-mixer\n/,
    );
    const manifest = JSON.parse(readFileSync(join(out, 'package.json'), 'utf8'));
    expect(manifest.name).toBe('interleave-block-wave-mixer');
    expect(manifest.exports).toEqual({ '.': './src/index.ts' });
    expect(manifest.dependencies['@interleave/core']).toBe('workspace:*');
    const source = readFileSync(join(out, 'src/wave-mixer.ts'), 'utf8');
    const imports = [...source.matchAll(/from '([^']+)'/g)].map((match) => match[1]);
    expect(imports.sort()).toEqual(['@interleave/core', '@tensorflow/tfjs', 'zod']);
    const config = parse(readFileSync(join(out, 'configs/mqar-wave-mixer.yaml'), 'utf8'));
    expect(config.plugins).toEqual(['interleave-block-wave-mixer']);
    expect(config.model.layers[0].block).toBe('wave_mixer');
  });

  it('passes its block contract tests as generated', () => {
    const result = spawnSync(process.execPath, [join(REPOSITORY, 'node_modules/vitest/vitest.mjs'), 'run'], {
      cwd: out,
      encoding: 'utf8',
      env: { ...process.env, FORCE_COLOR: '0', NO_COLOR: '1' },
    });
    const output = result.stdout + result.stderr;
    expect(output).toMatch(/Tests\s+21 passed \(21\)/);
    expect(result.status).toBe(0);
  });

  it('trains in its hybrid MQAR config, loaded as a plugin by package name', () => {
    const tracking = mkdtempSync(join(tmpdir(), 'interleave-new-block-'));
    try {
      const result = interleaveSync(
        [
          'train',
          'configs/mqar-wave-mixer.yaml',
          '--set',
          'train.steps=3',
          '--set',
          'train.eval_every=null',
          '--set',
          'task.test_examples=32',
          '--set',
          `tracking.uri=${tracking}`,
        ],
        out,
      );
      expect(result.stderr).not.toMatch(/error/i);
      expect(result.status).toBe(0);
      expect(result.stdout).toContain('model: 2 layers (wave_mixer, swa)');
      expect(result.stdout).toMatch(/final test accuracy [0-9.]+ \(loss [0-9.]+, 32 examples\) after 3 steps/);
    } finally {
      rmSync(tracking, { recursive: true, force: true });
    }
  });

  it('refuses a name that is not snake_case, and a non-empty --out, with one line', () => {
    const badName = interleaveSync(['new-block', 'WaveMixer', '--out', join(root, 'bad')], REPOSITORY);
    expect(badName.status).toBe(1);
    expect(badName.stderr.trim().split('\n')).toEqual([
      "interleave: block name 'WaveMixer' must be snake_case: lower-case letters and digits joined by '_', starting with a letter",
    ]);
    const occupied = join(root, 'occupied');
    mkdirSync(occupied);
    writeFileSync(join(occupied, 'keep.txt'), 'mine');
    const taken = interleaveSync(['new-block', 'wave_mixer', '--out', occupied], REPOSITORY);
    expect(taken.status).toBe(1);
    expect(taken.stderr.trim().split('\n')).toEqual([
      `interleave: ${occupied} already exists and is not empty; choose another --out`,
    ]);
    expect(readFileSync(join(occupied, 'keep.txt'), 'utf8')).toBe('mine');
  });
});
