import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  computeLawJson,
  type FitSettings,
  fitComputeLawSource,
  formatComputeLawReport,
} from '../src/scaling/fit-workflow.js';

const SETTINGS: FitSettings = { bootstrap: 0, seed: 0, confidence: 0.95, dropHighest: 0 };

/** Noise-free L(C) = 1.5 + 40·C^(−0.2) for group `a` (6 runs), and two runs of group `b`. */
function computeCsv(): string {
  const rows = ['arch,flops,loss'];
  for (let i = 0; i < 6; i++) {
    const compute = 1e15 * 4 ** i;
    rows.push(`a,${compute},${1.5 + 40 * compute ** -0.2}`);
  }
  rows.push('b,1e15,3.0', 'b,1e16,2.9');
  const file = join(mkdtempSync(join(tmpdir(), 'interleave-fit-')), 'points.csv');
  writeFileSync(file, `${rows.join('\n')}\n`);
  return file;
}

describe('fitComputeLawSource', () => {
  it('fits every group with enough points and names the others', async () => {
    const file = computeCsv();
    const tooFew: string[] = [];
    const report = await fitComputeLawSource({ kind: 'csv', file }, SETTINGS, {
      columns: { compute: 'flops', loss: 'loss', group: 'arch' },
      onTooFewPoints: (group, points) => tooFew.push(`${group}: ${points}`),
    });
    expect(tooFew).toEqual(['b: 2']);
    expect(report.groupLabel).toBe('arch');
    expect(report.fits.map((fit) => fit.name)).toEqual(['a']);
    expect(report.fits[0]?.fit.alpha).toBeCloseTo(0.2, 5);
    expect(report.fits[0]?.fit.E).toBeCloseTo(1.5, 5);
    const json = computeLawJson(report);
    expect(json).toMatchObject({ law: 'compute', csv: file, tooFewPoints: [{ group: 'b', points: 2 }], bootstrap: 0 });
    expect(json).not.toHaveProperty('skipped');
    expect(formatComputeLawReport(report)).toMatch(/^Compute law L\(C\) = E \+ A·C\^\(-alpha\), .*points\.csv\n/);
  });

  it('refuses when no group has enough points, saying how many each has', async () => {
    const file = computeCsv();
    await expect(
      fitComputeLawSource(
        { kind: 'csv', file },
        { ...SETTINGS, dropHighest: 3 },
        {
          columns: { compute: 'flops', loss: 'loss', group: 'arch' },
        },
      ),
    ).rejects.toThrow(`too few points: a compute-law fit needs at least 4 per group, ${file} has a: 3, b: 0`);
  });
});
