import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseBenchOptions } from './options.js';
import { renderResults } from './render.js';
import { type BenchResults, runBench } from './run-bench.js';

const repoRoot = resolve(import.meta.dirname, '..');

/** Runs `pnpm bench <args>` in-process; returns what it printed and its results. */
async function bench(args: string[]) {
  let printed = '';
  const progress: string[] = [];
  const results = await runBench(args, repoRoot, {
    out: { write: (text: string) => (printed += text) },
    progress: (line) => progress.push(line),
  });
  return { printed, progress, results };
}

// The harness end to end at its smallest shapes (no timing is asserted: the machine is shared).
describe('pnpm bench', () => {
  it('runs the scan section: fused and tf-op timed in one child process per row, ratio and memory reported', async () => {
    const json = join(mkdtempSync(join(tmpdir(), 'interleave-bench-')), 'results.json');
    const { printed, results } = await bench(['--smoke', '--only', 'scan', '--json', json]);
    const table = results.tables.find((entry) => entry.id === 'scan');
    expect(table?.rows).toHaveLength(2);
    for (const row of table?.rows ?? []) {
      expect(row.fusedMs).toBeGreaterThan(0);
      expect(row.opsMs).toBeGreaterThan(0);
      expect(row.speedup).toBeCloseTo((row.opsMs as number) / (row.fusedMs as number), 10);
      expect(row.fusedTensorBytes).toBeGreaterThan(0);
      expect(row.peakRssBytes).toBeGreaterThan(0);
    }
    expect(printed).toContain('fused speed-up × (tf-op ms ÷ fused ms)');
    expect(printed).toMatch(/backend wasm \(1 thread\)/);
    const written = JSON.parse(readFileSync(json, 'utf8')) as BenchResults;
    expect(written.tables).toEqual(results.tables);
    expect(renderResults(written)).toContain('| Mamba selective scan, d_inner 8 |');
  });

  it('runs the step-mode section on webgpu: both forms give the same logits, the replay says it replayed', async () => {
    const { printed, results } = await bench(['--smoke', '--only', 'step-mode', '--backend', 'webgpu']);
    const table = results.tables.find((entry) => entry.id === 'step-mode');
    expect(table?.rows).toHaveLength(2);
    for (const row of table?.rows ?? []) {
      expect(row.sameLogits).toBe('yes');
      // 48 tokens: two recorded steps at positions 2 and 3, the other 44 replayed.
      expect(row.status).toMatch(/^replayed 44 steps \(\d+ dispatches a step\)$/);
      expect(row.speedup).toBeCloseTo((row.tfjsMs as number) / (row.replayedMs as number), 10);
    }
    expect(printed).toContain('replay speed-up × (tfjs ÷ replayed)');
  });

  it('says why the PyTorch peer was skipped when the interpreter has no torch', async () => {
    const { printed, progress } = await bench(['--smoke', '--only', 'peer', '--python', '/nonexistent/python']);
    expect(progress.join('\n')).toMatch(/PyTorch peer skipped: no Python with torch \(\/nonexistent\/python: /);
    expect(printed).toContain('PyTorch peer skipped');
  });

  it('rejects unknown sections and bad thread counts with a clear message', () => {
    expect(() => parseBenchOptions(['--only', 'scna'], repoRoot)).toThrow(/--only 'scna' is not a section/);
    expect(() => parseBenchOptions(['--threads', '0'], repoRoot)).toThrow(/--threads must be a positive integer/);
    expect(parseBenchOptions(['--only', 'swa,scan', '--peer'], repoRoot).sections).toEqual(['scan', 'swa', 'peer']);
  });

  it('takes a list of backends: the sections run on the first, the peer table compares them all', () => {
    const options = parseBenchOptions(['--backend', 'wasm,tensorflow'], repoRoot);
    expect(options.backend).toBe('wasm');
    expect(options.backends).toEqual(['wasm', 'tensorflow']);
    expect(parseBenchOptions([], repoRoot).backends).toEqual(['wasm']);
    expect(() => parseBenchOptions(['--backend', 'wasm,tensorfow'], repoRoot)).toThrow(
      /--backend 'tensorfow' is not one of auto, tensorflow, webgpu, wasm, cpu/,
    );
  });
});
