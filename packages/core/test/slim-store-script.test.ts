import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

// scripts/slim-store.sh packs an MLflow file store to commit beside a device session's logs
// (docs/runs/README.md): per-step metrics thinned, evaluations and run metadata whole, no checkpoints.
const SCRIPT = resolve(import.meta.dirname, '../../../scripts/slim-store.sh');

let work: string;
beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'interleave-slim-'));
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

function metricLines(steps: number[]): string {
  return steps.map((step) => `17960856375${step} ${step / 1000} ${step}\n`).join('');
}

describe('scripts/slim-store.sh', () => {
  it('keeps every evaluation, every 100th training step and the last, the run files and config, no checkpoint', () => {
    const run = join(work, 'store/42/abc');
    for (const folder of [
      'metrics/train',
      'metrics/compute',
      'metrics/eval',
      'params',
      'tags',
      'artifacts/checkpoint',
    ]) {
      mkdirSync(join(run, folder), { recursive: true });
    }
    const everyStep = Array.from({ length: 250 }, (_, index) => index + 1);
    writeFileSync(join(run, 'metrics/train/loss'), metricLines(everyStep));
    writeFileSync(join(run, 'metrics/compute/flops'), metricLines(everyStep));
    writeFileSync(join(run, 'metrics/eval/accuracy'), metricLines([125, 250]));
    writeFileSync(join(run, 'params/model.d_model'), '64');
    writeFileSync(join(run, 'tags/backend'), 'webgpu');
    writeFileSync(join(run, 'meta.yaml'), 'status: 3\n');
    writeFileSync(join(run, 'artifacts/config.yaml'), 'seed: 0\n');
    writeFileSync(join(run, 'artifacts/checkpoint/model.safetensors'), 'weights');
    writeFileSync(join(work, 'store/42/meta.yaml'), 'name: zoology-fig2\n');

    const result = spawnSync('bash', [SCRIPT, join(work, 'store'), join(work, 'slim.tar.gz')], { encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const out = join(work, 'out');
    mkdirSync(out);
    expect(spawnSync('tar', ['-xzf', join(work, 'slim.tar.gz'), '-C', out]).status).toBe(0);

    const kept = join(out, '42/abc');
    expect(readFileSync(join(kept, 'metrics/train/loss'), 'utf8')).toBe(metricLines([100, 200, 250]));
    expect(readFileSync(join(kept, 'metrics/compute/flops'), 'utf8')).toBe(metricLines([100, 200, 250]));
    expect(readFileSync(join(kept, 'metrics/eval/accuracy'), 'utf8')).toBe(metricLines([125, 250]));
    expect(readFileSync(join(kept, 'params/model.d_model'), 'utf8')).toBe('64');
    expect(readFileSync(join(kept, 'tags/backend'), 'utf8')).toBe('webgpu');
    expect(readFileSync(join(kept, 'meta.yaml'), 'utf8')).toBe('status: 3\n');
    expect(readFileSync(join(kept, 'artifacts/config.yaml'), 'utf8')).toBe('seed: 0\n');
    expect(readFileSync(join(out, '42/meta.yaml'), 'utf8')).toBe('name: zoology-fig2\n');
    expect(existsSync(join(kept, 'artifacts/checkpoint'))).toBe(false);
  });

  it('says what is wrong with its arguments in one line', () => {
    const missing = spawnSync('bash', [SCRIPT, join(work, 'nowhere'), join(work, 'x.tar.gz')], { encoding: 'utf8' });
    expect(missing.status).toBe(2);
    expect(missing.stderr.trim()).toBe(`slim-store.sh: no store folder '${join(work, 'nowhere')}'`);
    mkdirSync(join(work, 'store'));
    const every = spawnSync('bash', [SCRIPT, join(work, 'store'), join(work, 'x.tar.gz'), '0'], { encoding: 'utf8' });
    expect(every.status).toBe(2);
    expect(every.stderr.trim()).toBe("slim-store.sh: <every> must be a positive whole number, got '0'");
  });
});
