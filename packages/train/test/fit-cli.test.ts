import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { InterleaveError, openTracker } from '@interleave/core';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { fitCommand } from '../src/cli/commands/fit.js';

const ROOT = resolve(import.meta.dirname, '../../..');
const CLI = resolve(ROOT, 'packages/train/bin/interleave.mjs');
/** Epoch AI's Chinchilla points, relative to ROOT (the CLI's cwd); source in the folder's README. */
const DATA = 'packages/eval/test/fixtures/chinchilla-svg-extracted.csv';
/** The acceptance command, after `interleave`. */
const ACCEPTANCE = [
  'fit',
  DATA,
  '--law',
  'chinchilla',
  '--n-col',
  'Model Size',
  '--flops-col',
  'Training FLOP',
  '--loss-col',
  'loss',
  '--drop-highest',
  '5',
  '--json',
];

function spawnInterleave(args: string[]) {
  const result = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Runs the command in this process, returning its exit code and what it wrote. */
async function runFit(args: string[]) {
  let stdout = '';
  let stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout += String(chunk);
    return true;
  });
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
  try {
    const status = await fitCommand.run(args);
    return { status, stdout, stderr };
  } finally {
    vi.restoreAllMocks();
  }
}

afterEach(() => vi.restoreAllMocks());

/** Checks the fitted values against Epoch AI's published fit with the tolerances. */
function expectEpochFit(fit: Record<string, unknown>) {
  for (const key of ['A', 'B', 'E', 'alpha', 'beta', 'computeOptimalExponent', 'points', 'seconds']) {
    expect(typeof fit[key], key).toBe('number');
  }
  expect(Math.abs((fit.A as number) / 482.01 - 1)).toBeLessThan(0.05);
  expect(Math.abs((fit.B as number) / 2085.43 - 1)).toBeLessThan(0.05);
  expect(Math.abs((fit.E as number) / 1.8172 - 1)).toBeLessThan(0.01);
  expect(Math.abs((fit.alpha as number) - 0.3478)).toBeLessThan(0.005);
  expect(Math.abs((fit.beta as number) - 0.3658)).toBeLessThan(0.005);
  expect(fit.points).toBe(240);
}

describe('interleave fit: the acceptance command', () => {
  it('prints exactly one JSON object on stdout with the Chinchilla fit', () => {
    const { status, stdout, stderr } = spawnInterleave(ACCEPTANCE);
    expect(stderr).toBe('');
    expect(status).toBe(0);
    expect(stdout.endsWith('\n')).toBe(true);
    expect(stdout.trim().split('\n')).toHaveLength(1);
    const fit = JSON.parse(stdout);
    expectEpochFit(fit);
    expect(fit.dropped).toBe(5);
    expect(fit.intervals.alpha.low).toBeLessThan(fit.alpha);
    console.log(`interleave fit (CLI, 200 bootstrap resamples) took ${fit.seconds.toFixed(2)} s`);
  });

  it('prints nothing but the JSON through pnpm either (no script banner)', () => {
    const result = spawnSync('npx', ['-y', 'pnpm@10.34.9', 'interleave', ...ACCEPTANCE, '--bootstrap', '0'], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(result.status).toBe(0);
    expect(result.stdout.trim().split('\n')).toHaveLength(1);
    expectEpochFit(JSON.parse(result.stdout));
  });

  it('prints a table with bootstrap intervals without --json', async () => {
    const args = ACCEPTANCE.filter((arg) => arg !== '--json');
    const { status, stdout } = await runFit([...args.slice(1), '--bootstrap', '20']);
    expect(status).toBe(0);
    expect(stdout).toContain('240 points (5 highest-loss dropped)');
    expect(stdout).toContain('95% interval (20 bootstrap resamples)');
    expect(stdout).toMatch(/^alpha\s+0\.347\d?\s+\[0\.3\d*, 0\.3\d*\]$/m);
    expect(stdout).toMatch(/^E\s+1\.817\s+\[1\.\d+, 1\.\d+\]$/m);
    expect(stdout).toMatch(/N_opt ∝ C\^0\.51\d*, D_opt ∝ C\^0\.48\d*/);
  });
});

const LAW = {
  'mamba+swa': { E: 1.5, A: 300, alpha: 0.2 },
  attention: { E: 1.8, A: 3000, alpha: 0.3 },
};

/** Runs in the conventions training writes: tags, params, and metrics logged at several steps. */
async function writeExperiments(uri: string): Promise<void> {
  let index = 0;
  for (const [architecture, law] of Object.entries(LAW)) {
    for (const exponent of [13, 14, 15, 16, 17, 18]) {
      const compute = 10 ** exponent;
      // ±0.5% deterministic wiggle, so that the fit has residuals to bootstrap.
      const loss = (law.E + law.A * compute ** -law.alpha) * (1 + 0.005 * Math.sin(index++ * 2.1));
      const run = await openTracker({ uri, experiment: 'compute-sweep', runName: `${architecture}-${exponent}` });
      await run.setTags({ 'interleave.architecture': architecture });
      // Earlier steps log other values: the fit must read the last ones.
      await run.logMetrics({ 'compute/flops': compute / 2, 'eval/loss': loss + 1 }, 5);
      await run.logMetrics({ 'compute/flops': compute, 'eval/loss': loss, 'eval/other': 2 * loss }, 10);
      await run.end('FINISHED');
    }
  }
  const failed = await openTracker({ uri, experiment: 'compute-sweep', runName: 'crashed' });
  await failed.setTags({ 'interleave.architecture': 'attention' });
  await failed.logMetrics({ 'compute/flops': 1e19, 'eval/loss': 9 }, 1);
  await failed.end('FAILED');
  // What `interleave sweep` and `interleave report` add to an experiment: runs with no model.
  const parent = await openTracker({ uri, experiment: 'compute-sweep', runName: 'compute-sweep-sweep' });
  await parent.setTags({ 'interleave.sweep_role': 'parent', 'interleave.sweep_id': 'abc' });
  await parent.end('FINISHED');
  const report = await openTracker({ uri, experiment: 'compute-sweep', runName: 'report' });
  await report.setTags({ 'interleave.kind': 'report' });
  await report.end('FINISHED');
  const lonely = await openTracker({ uri, experiment: 'compute-sweep', runName: 'lonely' });
  await lonely.setTags({ 'interleave.architecture': 'hyena' });
  await lonely.logMetrics({ 'compute/flops': 1e15, 'eval/loss': 3 }, 1);
  await lonely.end('FINISHED');

  const truth = { A: 400, B: 1500, E: 1.7, alpha: 0.32, beta: 0.29 };
  for (const n of [1e7, 5e7, 2e8]) {
    for (const d of [1e9, 5e9, 3e10]) {
      const run = await openTracker({ uri, experiment: 'token-sweep', runName: `n${n}-d${d}` });
      await run.logParams({ 'model.parameters': n });
      await run.setTags({ 'interleave.architecture': 'mamba' });
      const loss = truth.E + truth.A / n ** truth.alpha + truth.B / d ** truth.beta;
      await run.logMetrics({ 'compute/tokens': d, 'eval/loss': loss }, 100);
      await run.end('FINISHED');
    }
  }
}

describe('interleave fit on an MLflow experiment', () => {
  let uri: string;
  beforeAll(async () => {
    uri = join(mkdtempSync(join(tmpdir(), 'interleave-fit-')), 'mlruns');
    await writeExperiments(uri);
  });

  it('fits each architecture with intervals, and says which runs it skipped', async () => {
    const { status, stdout, stderr } = await runFit(['compute-sweep', '--uri', uri, '--json', '--bootstrap', '100']);
    expect(status).toBe(0);
    const output = JSON.parse(stdout);
    expect(output.law).toBe('compute');
    expect(output.fits.map((fit: { group: string }) => fit.group)).toEqual(['mamba+swa', 'attention']);
    for (const fit of output.fits) {
      const law = LAW[fit.group as keyof typeof LAW];
      expect(fit.points).toBe(6);
      expect(Math.abs(fit.E / law.E - 1)).toBeLessThan(0.03);
      expect(Math.abs(fit.alpha - law.alpha)).toBeLessThan(0.03);
      expect(fit.intervals.alpha.low).toBeLessThanOrEqual(fit.alpha);
      expect(fit.intervals.alpha.high).toBeGreaterThanOrEqual(fit.alpha);
    }
    expect(output.tooFewPoints).toEqual([{ group: 'hyena', points: 1 }]);
    expect(stderr).toContain('skipping run crashed: status FAILED');
    expect(stderr).not.toContain('compute-sweep-sweep');
    expect(stderr).not.toContain('skipping run report');
    expect(stderr).toContain("not fitting 'hyena': 1 points, a compute-law fit needs at least 4");
  });

  it('prints per-architecture intervals as a table, and reads another loss metric', async () => {
    const { stdout } = await runFit([
      'compute-sweep',
      '--uri',
      uri,
      '--bootstrap',
      '30',
      '--loss-metric',
      'eval/other',
    ]);
    expect(stdout).toContain("experiment 'compute-sweep'");
    expect(stdout).toMatch(/^architecture\s+points\s+E\s+95% CI\s+A\s+95% CI\s+alpha\s+95% CI$/m);
    // eval/other is twice eval/loss, so E doubles.
    for (const [architecture, law] of Object.entries(LAW)) {
      const row = new RegExp(
        `^${architecture.replace('+', '\\+')}\\s+6\\s+([\\d.]+)\\s+\\[([\\d.]+), ([\\d.]+)\\]`,
        'm',
      );
      const [, estimate, low, high] = row.exec(stdout) ?? [];
      expect(Math.abs(Number(estimate) / (2 * law.E) - 1), architecture).toBeLessThan(0.03);
      expect(Number(low)).toBeLessThan(Number(estimate));
      expect(Number(high)).toBeGreaterThan(Number(estimate));
    }
  });

  it('fits Chinchilla approach 3 to N = model.parameters and D = compute/tokens', async () => {
    const { status, stdout } = await runFit(['token-sweep', '--uri', uri, '--law', 'chinchilla', '--json']);
    expect(status).toBe(0);
    const fit = JSON.parse(stdout);
    expect(fit.points).toBe(9);
    expect(fit.E).toBeCloseTo(1.7, 3);
    expect(fit.alpha).toBeCloseTo(0.32, 3);
    expect(fit.beta).toBeCloseTo(0.29, 3);
    expect(fit.skipped).toEqual([]);
  });

  it('names an unknown experiment and lists the ones there are', async () => {
    const error = await runFit(['nosuch', '--uri', uri]).catch((thrown: Error) => thrown);
    expect(error).toBeInstanceOf(InterleaveError);
    expect((error as Error).message.startsWith(`unknown MLflow experiment 'nosuch' in ${uri} (experiments: `)).toBe(
      true,
    );
    expect((error as Error).message).toContain("'compute-sweep'");
    expect((error as Error).message).toContain("'token-sweep'");
  });

  it('says how many points a fit needs', async () => {
    await expect(runFit(['compute-sweep', '--uri', uri, '--drop-highest', '3'])).rejects.toThrow(
      'too few points: a compute-law fit needs at least 4 per group',
    );
    await expect(runFit(['compute-sweep', '--uri', uri, '--law', 'chinchilla'])).rejects.toThrow(
      'a Chinchilla fit needs at least 6 points (5 parameters), got 0',
    );
  });
});

describe('interleave fit: bad input', () => {
  it('lists the columns when one is unknown, and names the line of a bad cell', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'interleave-fit-csv-'));
    const file = join(dir, 'runs.csv');
    writeFileSync(file, 'arch,flops,loss\nswa,1e15,3.1\nswa,1e16,n/a\n');
    await expect(runFit([file, '--compute-col', 'FLOPs'])).rejects.toThrow(
      `${file}: no column 'FLOPs' (columns: 'arch', 'flops', 'loss')`,
    );
    await expect(runFit([file, '--compute-col', 'flops', '--group-col', 'arch'])).rejects.toThrow(
      `${file}:3: column 'loss' holds 'n/a', not a number`,
    );
  });

  it('rejects unknown laws, misapplied flags and bad numbers', async () => {
    await expect(runFit([DATA, '--law', 'kaplan'])).rejects.toThrow("unknown --law 'kaplan'");
    await expect(runFit([DATA, '--uri', './mlruns'])).rejects.toThrow('--uri applies to MLflow experiments');
    await expect(runFit(['sweep', '--n-col', 'N'])).rejects.toThrow('--n-col applies to CSV files');
    await expect(runFit([DATA, '--bootstrap', '2.5'])).rejects.toThrow(
      "--bootstrap takes a non-negative integer, got '2.5'",
    );
    await expect(runFit([DATA, '--law', 'chinchilla', '--n-col', 'Model Size'])).rejects.toThrow(
      'needs --d-col <column> or --flops-col <column>',
    );
  });

  it('prints an input error as one line and exits 1', () => {
    const { status, stdout, stderr } = spawnInterleave(['fit', 'missing.csv', '--json']);
    expect(status).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toBe('interleave: CSV file not found: missing.csv\n');
  });
});
