import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findRuns, findRunsWithTag, openTracker } from '@interleave/core';
import { beforeAll, describe, expect, it } from 'vitest';

const CLI = resolve(import.meta.dirname, '../bin/interleave.mjs');

function interleave(args: string[], cwd: string) {
  const result = spawnSync(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8' });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Four finished runs per architecture (enough for a compute fit), each with an MQAR grid point. */
async function writeExperiment(uri: string, experiment: string): Promise<string[]> {
  const ids: string[] = [];
  for (const [architecture, floor] of [
    ['mamba+swa', 1.5],
    ['attention+attention', 1.7],
  ] as const) {
    for (const [index, flops] of [1e12, 1e13, 1e14, 1e15].entries()) {
      const tracker = await openTracker({ uri, experiment, runName: `${architecture}-${index}` });
      await tracker.setTags({ 'interleave.architecture': architecture, 'interleave.backend': 'cpu' });
      await tracker.logParams({
        'model.d_model': 32 * 2 ** index,
        'task.seq_len': 64,
        'model.parameters': 1000 * 4 ** index,
      });
      await tracker.logMetrics(
        {
          'compute/flops': flops,
          'eval/loss': (floor + 400 * flops ** -0.17) * (index % 2 === 0 ? 1.003 : 0.997),
          'eval/accuracy': 0.2 * index,
          [`eval/mqar/L64_K${4 * 2 ** index}/accuracy`]: 1 - 0.2 * index,
        },
        100,
      );
      await tracker.end('FINISHED');
      ids.push(tracker.runId);
    }
  }
  return ids;
}

describe('interleave report', () => {
  let dir: string;
  let runIds: string[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'interleave-report-cli-'));
    runIds = await writeExperiment(join(dir, 'mlruns'), 'sizes');
  });

  it('writes report.html, report.md and the plots, and logs them as artifacts of a report run', async () => {
    const { status, stdout, stderr } = interleave(['report', 'sizes'], dir);
    expect(stderr).toBe('');
    expect(status).toBe(0);
    const files = ['report.html', 'report.md', 'plots/mqar-accuracy.svg', 'plots/loss-vs-compute.svg'];
    for (const file of files) {
      expect(stdout).toContain(`wrote ${join('reports', 'sizes', file)}\n`);
      expect(existsSync(join(dir, 'reports', 'sizes', file)), file).toBe(true);
    }
    expect(stdout).not.toContain('induction-accuracy.svg');

    const reportRuns = await findRunsWithTag(join(dir, 'mlruns'), 'sizes', 'interleave.kind', 'report');
    expect(reportRuns).toHaveLength(1);
    const run = reportRuns[0]!;
    expect(run.runName).toBe('report');
    expect(run.status).toBe('FINISHED');
    expect(stdout).toContain(`logged the report as artifacts of run ${run.runId}`);
    for (const file of files) {
      const artifact = readFileSync(join(runFolder(run), 'artifacts', file), 'utf8');
      expect(artifact, file).toBe(readFileSync(join(dir, 'reports', 'sizes', file), 'utf8'));
    }
    const html = readFileSync(join(dir, 'reports', 'sizes', 'report.html'), 'utf8');
    for (const id of runIds) expect(html).toContain(`<td>${id.slice(0, 8)}</td>`);
    expect(html.match(/<svg\b/g)).toHaveLength(2);
    expect(html).toContain('No induction-head evaluations in this experiment');
  });

  it('leaves the earlier report run out of the next report', async () => {
    const out = join(dir, 'second');
    const { status, stderr } = interleave(
      ['report', 'sizes', '--uri', join(dir, 'mlruns'), '--out', out, '--no-log'],
      dir,
    );
    expect(stderr).toBe('');
    expect(status).toBe(0);
    const markdown = readFileSync(join(out, 'report.md'), 'utf8');
    expect(markdown).toContain(`${runIds.length} runs (${runIds.length} finished)`);
    const runTable = markdown.slice(markdown.indexOf('| run | id |'));
    expect(runTable.trim().split('\n')).toHaveLength(2 + runIds.length);
    expect(runTable).not.toMatch(/^\| report \|/m);
    // --no-log: still just the one report run from the first test.
    const reportRuns = (await findRuns(join(dir, 'mlruns'), 'sizes')).filter(
      (run) => run.tags['interleave.kind'] === 'report',
    );
    expect(reportRuns).toHaveLength(1);
  });

  it('names an unknown experiment and lists the ones that exist', () => {
    const { status, stderr } = interleave(['report', 'sizez'], dir);
    expect(status).toBe(1);
    expect(stderr).toBe(
      "interleave: unknown MLflow experiment 'sizez' in ./mlruns (experiments: 'Default', 'sizes')\n",
    );
  });

  it('says when the experiment has no runs to report', async () => {
    const tracker = await openTracker({ uri: join(dir, 'mlruns'), experiment: 'reports-only', runName: 'report' });
    await tracker.setTags({ 'interleave.kind': 'report' });
    await tracker.end('FINISHED');
    const { status, stderr } = interleave(['report', 'reports-only'], dir);
    expect(status).toBe(1);
    expect(stderr).toBe("interleave: MLflow experiment 'reports-only' in ./mlruns has no runs to report\n");
  });

  it('takes exactly one experiment name', () => {
    const { status, stderr } = interleave(['report'], dir);
    expect(status).toBe(1);
    expect(stderr).toContain('report takes one experiment name');
  });
});

/** The run's folder in the file store: its artifact folder's parent. */
function runFolder(run: { artifactUri: string }): string {
  return dirname(fileURLToPath(run.artifactUri));
}
