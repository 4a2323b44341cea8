import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { configDataSources, fuzzConfigs, shippedConfigSources } from './config-fuzz.js';

const CONFIGS = resolve(import.meta.dirname, '../../../../configs');
const TOTAL_MUTANTS = 2000;

describe('config fuzzing', () => {
  it('every mutant of every shipped config loads or fails with one located line', async () => {
    const { sources: files, scratch } = shippedConfigSources(CONFIGS);
    onTestFinished(() => rmSync(scratch, { recursive: true, force: true }));
    const sources = [...files, ...(await configDataSources(files))];
    // A fixed total (at least 8 mutants a source), so the run's length does not grow with every config shipped.
    const perSource = Number(
      process.env.INTERLEAVE_FUZZ_PER_SOURCE ?? Math.max(8, Math.floor(TOTAL_MUTANTS / sources.length)),
    );
    const figures = await fuzzConfigs(sources, {
      seed: Number(process.env.INTERLEAVE_FUZZ_SEED ?? 17),
      perSource,
      hangMilliseconds: 10_000,
    });
    const { failures, ...counts } = figures;
    console.log(`config fuzz: ${JSON.stringify(counts)}`);
    // The first failure of each kind, so one run shows every hole.
    const kinds = new Map(failures.map((failure) => [failure.problem.replace(/[:'(].*$/, ''), failure]));
    expect([...kinds.values()]).toEqual([]);
    expect(counts.mutants).toBe(sources.length * perSource);
    expect(counts.loaded + counts.rejected).toBe(counts.mutants);
    expect(counts.stackTraces).toBe(0);
    expect(counts.hangs).toBe(0);
    // Both outcomes are exercised: mutants that still load, and many ways to be rejected.
    expect(counts.loaded).toBeGreaterThan(0);
    expect(counts.rejected).toBeGreaterThan(counts.mutants / 2);
  }, 300_000);
});
