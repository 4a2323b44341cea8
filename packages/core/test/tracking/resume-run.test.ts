import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { findRuns, openTracker, resumeTracker } from '../../src/index.js';

describe('resuming a file-store run', () => {
  it('reopens a crashed run as RUNNING and drops the metric points logged after the checkpoint', async () => {
    const uri = mkdtempSync(join(tmpdir(), 'mlruns-resume-'));
    const first = await openTracker({ uri, experiment: 'e', runName: 'r' });
    for (let step = 1; step <= 5; step++) await first.logMetrics({ 'train/loss': 10 - step, lr: step / 10 }, step);
    await first.logParams({ a: 1 });
    // The process dies here: no end(), the run stays RUNNING with points up to step 5.

    const resumed = await resumeTracker({ uri, runId: first.runId, afterStep: 3 });
    expect(resumed.artifactLocation).toBe(first.artifactLocation);
    const [run] = await findRuns(uri, 'e');
    const steps = (key: string) =>
      readFileSync(join(runFolder(run!), 'metrics', key), 'utf8')
        .trim()
        .split('\n')
        .map((line) => Number(line.split(' ')[2]));
    expect(steps('train/loss')).toEqual([1, 2, 3]);
    expect(steps('lr')).toEqual([1, 2, 3]);
    await resumed.logParams({ a: 1 });
    await expect(resumed.logParams({ a: 2 })).rejects.toThrow(/write-once/);
    await resumed.logMetrics({ 'train/loss': 6 }, 4);
    await resumed.end('FINISHED');
    const meta = parse(readFileSync(join(runFolder(run!), 'meta.yaml'), 'utf8'));
    expect(meta.status).toBe(3);
    expect(meta.run_name).toBe('r');
    expect(steps('train/loss')).toEqual([1, 2, 3, 4]);
    await expect(resumeTracker({ uri, runId: first.runId, afterStep: 4 })).rejects.toThrow(/already finished/);
    await expect(resumeTracker({ uri, runId: 'f'.repeat(32), afterStep: 0 })).rejects.toThrow(/no MLflow run/);
  });
});

/** The run's folder in the file store: its artifact folder's parent. */
function runFolder(run: { artifactUri: string }): string {
  return dirname(fileURLToPath(run.artifactUri));
}
