import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { InterleaveError } from '@interleave/core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  buildExperimentReport,
  DEFAULT_REPORT_FIT_OPTIONS,
  type ExperimentReport,
  type ReportSection,
  renderReportHtml,
  renderReportMarkdown,
  writeReport,
} from '../src/index.js';
import { MISSING } from '../src/report/format-cells.js';
import { COMPUTE_LAW_MIN_POINTS, fitComputeLaw } from '../src/scaling/index.js';
import {
  computePointsOf,
  mixedExperimentRuns,
  type SyntheticRun,
  TRUE_LAWS,
  temporaryStore,
  type WrittenRun,
  writeRuns,
} from './report-fixtures.js';

const ARCHITECTURES = Object.keys(TRUE_LAWS).sort();

function section(report: ExperimentReport, id: string): ReportSection {
  const found = report.sections.find((candidate) => candidate.id === id);
  if (!found) throw new Error(`no section ${id}`);
  return found;
}

/** The texts inside the SVG's legend group (Vega renders legends as `role-legend` groups). */
function legendText(svg: string): string {
  const start = svg.indexOf('role-legend');
  expect(start).toBeGreaterThan(-1);
  return svg.slice(start);
}

/** The compiled Vega scale called `name` in a plot. */
function scale(plotSection: ReportSection, name: string): Record<string, unknown> {
  const scales = (plotSection.plot?.vega.scales ?? []) as unknown as Record<string, unknown>[];
  const found = scales.find((candidate) => candidate.name === name);
  if (!found) throw new Error(`no scale ${name} in ${plotSection.id}`);
  return found;
}

/** The tick labels of each axis of a rendered plot (Vega draws them in `role-axis-label` groups). */
function tickLabelsByAxis(svg: string): string[][] {
  return svg
    .split('role-axis-label')
    .slice(1)
    .map((group) =>
      [...group.slice(0, group.indexOf('</g>')).matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => m[1] as string),
    );
}

/** Significant digits of a numeric tick label: 0.245 → 3, 1e15 → 1, 2k → 1, 0.242701167583 → 12. */
function significantDigits(label: string): number {
  const mantissa = label.replace(/e[+-]?\d+$/i, '').replace(/[kM]$/, '');
  return mantissa.replace(/\D/g, '').replace(/^0+/, '').replace(/0+$/, '').length;
}

function expectShortTickLabels(svg: string, what: string): void {
  const axes = tickLabelsByAxis(svg);
  expect(axes.length, what).toBeGreaterThanOrEqual(2);
  for (const label of axes.flat()) expect(significantDigits(label), `${what}: tick '${label}'`).toBeLessThanOrEqual(4);
}

function tableRowOf(sectionWithTable: ReportSection, firstCell: string): string[] {
  const row = sectionWithTable.tables[0]?.rows.find((candidate) => candidate[0] === firstCell);
  if (!row) throw new Error(`no row ${firstCell} in ${sectionWithTable.id}`);
  return row;
}

describe('experiment report from an MLflow store', () => {
  let uri: string;
  let runs: WrittenRun[];
  let report: ExperimentReport;
  let html: string;

  beforeAll(async () => {
    uri = temporaryStore();
    runs = await writeRuns(uri, 'mixed', mixedExperimentRuns());
    // A report run of an earlier `interleave report`: not data.
    await writeRuns(uri, 'mixed', [
      {
        name: 'report',
        tags: { 'interleave.kind': 'report' },
        metrics: { 'compute/flops': [1e20], 'eval/loss': [0.1] },
      },
    ]);
    report = await buildExperimentReport({ uri, experiment: 'mixed', now: new Date('2026-11-23T10:00:00Z') });
    html = renderReportHtml(report);
  });

  it('is one self-contained HTML file: no scripts, stylesheets, fonts or images fetched from anywhere', () => {
    expect(html).toMatch(/^<!DOCTYPE html>/);
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<link\b/i);
    expect(html).not.toMatch(/<img\b/i);
    expect(html).not.toMatch(/@import|@font-face|url\(/i);
    expect(html).not.toMatch(/\b(?:src|href)\s*=\s*["']?(?:https?:)?\/\//i);
    expect(html).toContain('<style>');
  });

  it('has one inline SVG per plot: MQAR, induction heads and loss vs. compute', () => {
    expect(html.match(/<svg\b/g)).toHaveLength(3);
    expect(report.sections.map((candidate) => [candidate.id, candidate.plot?.name])).toEqual([
      ['mqar', 'mqar-accuracy'],
      ['induction', 'induction-accuracy'],
      // No learning-rate sweep and no logged state sizes in this experiment: omitted, no plot.
      ['learning-rate', undefined],
      ['state-size', undefined],
      ['compute', 'loss-vs-compute'],
      ['mad', undefined],
      ['runs', undefined],
    ]);
  });

  it('titles every axis with its quantity and unit', () => {
    const mqar = section(report, 'mqar').plot!.svg;
    // Narrow panels get the axis title on two lines.
    expect(mqar).toMatch(/number of key-value pairs K<\/tspan><tspan[^>]*>\(log scale\)/);
    expect(mqar).toContain('accuracy (fraction of queries correct)');
    expect(mqar).toContain('model width d_model');
    const induction = section(report, 'induction').plot!.svg;
    expect(induction).toContain('sequence length (tokens, log scale)');
    expect(induction).toContain('accuracy (fraction correct)');
    const compute = section(report, 'compute').plot!.svg;
    expect(compute).toContain('training compute (FLOPs, log scale)');
    expect(compute).toContain('eval loss (nats/token, log scale)');
  });

  it('plots loss against compute on log-log axes and induction lengths on a log2 axis', () => {
    const compute = section(report, 'compute');
    expect(scale(compute, 'x').type).toBe('log');
    expect(scale(compute, 'y').type).toBe('log');
    const induction = section(report, 'induction');
    expect(scale(induction, 'x')).toMatchObject({ type: 'log', base: 2 });
    expect(scale(induction, 'y').type).toBe('linear');
  });

  it('labels every tick of every plot with a short rounded number', () => {
    for (const id of ['mqar', 'induction', 'compute']) expectShortTickLabels(section(report, id).plot!.svg, id);
  });

  it('marks the training length on the induction plot', () => {
    const vegaLite = JSON.stringify(section(report, 'induction').plot!.vegaLite);
    expect(vegaLite).toContain('"rule"');
    expect(section(report, 'induction').plot!.svg).toContain('trained at 256');
  });

  it('tables the induction error bars where runs logged them', () => {
    const tables = section(report, 'induction').tables;
    expect(tables).toHaveLength(2);
    const intervals = tables[1]!;
    expect(intervals.caption).toMatch(/95% Wilson intervals/);
    const byArchitecture = new Map(intervals.rows.map((row) => [row[0], row.slice(2)]));
    expect(byArchitecture.get('mamba+swa')?.[0]).toBe('0.982–0.995 (n=1000)');
    expect(new Set(byArchitecture.get('attention+attention'))).toEqual(new Set([MISSING]));
  });

  it('lists every architecture of a plot in its legend, with one colour per architecture across plots', () => {
    const shown: Record<string, string[]> = {
      mqar: ARCHITECTURES,
      induction: ['attention+attention', 'mamba+swa'],
      compute: ARCHITECTURES,
    };
    const colourOf = new Map<string, string>();
    for (const [id, architectures] of Object.entries(shown)) {
      const plotSection = section(report, id);
      const legend = legendText(plotSection.plot!.svg);
      for (const architecture of architectures) expect(legend, `${id} legend`).toContain(architecture);
      const colour = scale(plotSection, 'color');
      expect(colour.domain).toEqual(architectures);
      (colour.domain as string[]).forEach((architecture, index) => {
        const assigned = (colour.range as string[])[index] as string;
        expect(colourOf.get(architecture) ?? assigned, `${architecture} in ${id}`).toBe(assigned);
        colourOf.set(architecture, assigned);
      });
    }
    expect(new Set(colourOf.values()).size).toBe(ARCHITECTURES.length);
  });

  it('fits E + A·C^−α per architecture with enough runs, as fitComputeLaw does', () => {
    const compute = section(report, 'compute');
    const table = compute.tables[0]!;
    expect(table.columns).toEqual(['architecture', 'runs', 'E (nats/token)', 'A', 'α', 'confidence']);
    expect(table.rows.map((row) => row[0])).toEqual(['attention+attention', 'mamba+swa']);
    for (const architecture of ['attention+attention', 'mamba+swa']) {
      const fit = fitComputeLaw(computePointsOf(runs, architecture), DEFAULT_REPORT_FIT_OPTIONS);
      const row = tableRowOf(compute, architecture);
      expect(row[1]).toBe('4');
      expect(row[2]).toBe(
        `${fit.E.toPrecision(4)} [${fit.intervals.E.low.toPrecision(4)}, ${fit.intervals.E.high.toPrecision(4)}]`,
      );
      expect(row[3]).toBe(
        `${fit.A.toPrecision(4)} [${fit.intervals.A.low.toPrecision(4)}, ${fit.intervals.A.high.toPrecision(4)}]`,
      );
      expect(row[4]).toBe(
        `${fit.alpha.toPrecision(4)} [${fit.intervals.alpha.low.toPrecision(4)}, ${fit.intervals.alpha.high.toPrecision(4)}]`,
      );
      expect(row[5]).toBe(`${Math.round(fit.confidence * 100)}%`);
      expect(html).toContain(`<td class="number">${row[2]}</td>`);
    }
    expect(compute.notes).toEqual([
      `hyena+hyena: 2 runs with compute and loss; a fit needs at least ${COMPUTE_LAW_MIN_POINTS}.`,
    ]);
  });

  it('draws each fitted curve through the compute range of its runs', () => {
    const layers = (
      section(report, 'compute').plot!.vegaLite as { layer: { data: { values: Record<string, number | string>[] } }[] }
    ).layer;
    const curve = layers[0]!.data.values.filter((point) => point.architecture === 'mamba+swa');
    const fit = fitComputeLaw(computePointsOf(runs, 'mamba+swa'), DEFAULT_REPORT_FIT_OPTIONS);
    expect(curve[0]!.compute).toBeCloseTo(2e12, -8);
    expect(curve.at(-1)!.compute).toBeCloseTo(5e15, -11);
    for (const point of curve) {
      expect(point.loss).toBeCloseTo(fit.E + fit.A * (point.compute as number) ** -fit.alpha, 10);
    }
    // The crashed run's point (1e12 FLOPs, loss 9) is not data: it did not finish.
    const points = layers[1]!.data.values;
    expect(points).toHaveLength(10);
    expect(points.some((point) => point.loss === 9)).toBe(false);
  });

  it('shows MQAR accuracy by K per model width, from the eval/mqar grid metrics', () => {
    const mqar = section(report, 'mqar');
    const table = mqar.tables[0]!;
    expect(table.columns).toEqual(['architecture', 'd_model', 'seq_len', 'K=4', 'K=8', 'K=16', 'K=32', 'K=64']);
    // 2 widths with the grid for each architecture, and for two of them 2 more widths whose
    // runs were only evaluated on their training task (K = 16).
    expect(table.rows).toHaveLength(10);
    const row = (dModel: string) =>
      table.rows.find((candidate) => candidate[0] === 'attention+attention' && candidate[1] === dModel)!.slice(2);
    expect(row('128')).toEqual(['256', '1.000', '1.000', '1.000', '0.950', '0.850']);
    expect(row('32')).toEqual(['256', '–', '–', '0.750', '–', '–']);
    expect(JSON.stringify(mqar.plot!.vegaLite)).toContain('"column"');
  });

  it('has every run in the run table, the failed one with its status, and not the earlier report', () => {
    const table = section(report, 'runs').tables[0]!;
    expect(table.rows).toHaveLength(runs.length);
    for (const run of runs) {
      const row = table.rows.find((candidate) => candidate[1] === run.runId.slice(0, 8));
      expect(row, run.name).toBeDefined();
      expect(row![0]).toBe(run.name);
      expect(row![2]).toBe(run.architecture);
      expect(row![3]).toBe(run.status ?? 'FINISHED');
    }
    const large = table.rows.find((candidate) => candidate[0] === 'mamba-swa-d256')!;
    expect(large).toEqual([
      'mamba-swa-d256',
      large[1],
      'mamba+swa',
      'FINISHED',
      '1,700,000',
      '256',
      '256',
      '3,000',
      '0.900',
      expect.stringMatching(/^\d\.\d{4}$/),
      '5.00e+15',
      'wasm',
    ]);
    expect(section(report, 'runs').notes).toEqual(['1 run is not finished (1 FAILED); the plots leave it out.']);
    expect(report.runCount).toBe(runs.length);
    expect(html).not.toContain('>report<');
  });

  it('writes the same tables into Markdown, with the plots linked as SVG files written beside it', async () => {
    const markdown = renderReportMarkdown(report);
    expect(markdown).toContain('# Experiment mixed');
    expect(markdown).toContain('![MQAR accuracy against the number of key-value pairs](plots/mqar-accuracy.svg)');
    expect(markdown).toContain('![Eval loss against training compute, with fitted curves](plots/loss-vs-compute.svg)');
    expect(markdown).toContain('| run | id | architecture | status |');
    const fitRow = tableRowOf(section(report, 'compute'), 'mamba+swa');
    expect(markdown).toContain(`| ${fitRow.join(' | ')} |`);

    const directory = join(temporaryStore(), '..', 'out');
    const written = await writeReport(report, directory);
    expect(written.files.map((file) => file.path).sort()).toEqual([
      'plots/induction-accuracy.svg',
      'plots/loss-vs-compute.svg',
      'plots/mqar-accuracy.svg',
      'report.html',
      'report.md',
    ]);
    for (const file of written.files) expect(existsSync(join(directory, file.path)), file.path).toBe(true);
    expect(readFileSync(join(directory, 'plots/loss-vs-compute.svg'), 'utf8')).toBe(
      section(report, 'compute').plot!.svg,
    );
    expect(readFileSync(join(directory, 'report.html'), 'utf8')).toBe(html);
  });
});

describe('induction runs repeated over seeds', () => {
  it('tables mean and range over the runs that differ only in seed, apart from the best run shown', async () => {
    const uri = temporaryStore();
    const induction = (at1024: number, at2048: number) => ({
      'eval/induction/len_256/accuracy': [1],
      'eval/induction/len_1024/accuracy': [at1024],
      'eval/induction/len_2048/accuracy': [at2048],
    });
    const base = { 'task.name': 'induction_heads', 'task.seq_len': 256, 'train.optimizer.lr': 0.001 };
    await writeRuns(uri, 'seeds', [
      // Where each logs and what it evaluates differ too; they are still one configuration.
      {
        name: 's0',
        architecture: 'rglru+rglru',
        params: { ...base, seed: 0, 'tracking.uri': '/a' },
        metrics: induction(1, 0.955),
      },
      {
        name: 's1',
        architecture: 'rglru+rglru',
        params: { ...base, seed: 1, 'tracking.uri': '/b', 'evals.0.lengths': '[1024]' },
        metrics: induction(0.817, 0.569),
      },
      {
        name: 's2',
        architecture: 'rglru+rglru',
        params: { ...base, seed: 2, 'tracking.uri': '/c' },
        metrics: induction(0.9, 0.7),
      },
      // Another learning rate is another configuration: not averaged in, and alone it has no spread.
      {
        name: 'lr',
        architecture: 'rglru+rglru',
        params: { ...base, seed: 3, 'train.optimizer.lr': 0.003 },
        metrics: induction(0.2, 0.1),
      },
      { name: 'm', architecture: 'mamba+mamba', params: { ...base, seed: 0 }, metrics: induction(1, 0.76) },
    ]);
    const report = await buildExperimentReport({ uri, experiment: 'seeds' });
    const tables = section(report, 'induction').tables;
    const spread = tables.find((table) => table.caption?.includes('over seeds'));
    expect(spread?.columns).toEqual(['architecture', 'seeds', '256', '1024', '2048']);
    expect(spread?.rows).toEqual([
      ['rglru+rglru', '0, 1, 2', '1.000 (1.000–1.000, 3)', '0.906 (0.817–1.000, 3)', '0.741 (0.569–0.955, 3)'],
    ]);
    // The plot and the first table still show one run per architecture: the best one.
    expect(tables[0]?.rows.map((row) => row.slice(0, 2))).toEqual([
      ['mamba+mamba', 'm'],
      ['rglru+rglru', 's0'],
    ]);
    expect(section(report, 'induction').notes.join(' ')).toMatch(/differ only in seed/);
  });
});

describe('report sections without data', () => {
  it('replaces each empty section by a note saying why, and still lists the runs', async () => {
    const uri = temporaryStore();
    // Runs of some other task: no MQAR grid, no K, no induction lengths, no compute.
    await writeRuns(uri, 'plain', [
      { name: 'a', architecture: 'mamba', params: { 'task.name': 'copying' }, metrics: { 'eval/accuracy': [0.5] } },
      { name: 'b', params: { 'task.name': 'copying' }, metrics: { 'eval/loss': [2.5] } },
    ]);
    const report = await buildExperimentReport({ uri, experiment: 'plain' });
    const html = renderReportHtml(report);
    expect(html).not.toContain('<svg');
    expect(section(report, 'mqar').omitted).toMatch(/^No MQAR evaluations in this experiment/);
    expect(section(report, 'induction').omitted).toMatch(/^No induction-head evaluations in this experiment/);
    expect(section(report, 'compute').omitted).toMatch(/^No runs with both compute\/flops and eval\/loss/);
    expect(section(report, 'learning-rate').omitted).toMatch(
      /^No configuration was trained at more than one learning rate/,
    );
    expect(section(report, 'state-size').omitted).toMatch(/^Fewer than two models with a logged state size/);
    expect(section(report, 'mad').omitted).toMatch(/^No finished runs of a MAD task/);
    expect(html).toContain(
      '<p class="omitted">No MQAR evaluations in this experiment (no eval/mqar/L&lt;seq&gt;_K&lt;k&gt;',
    );
    expect(html).toContain('<p class="omitted">No induction-head evaluations in this experiment');
    expect(html).toContain('<p class="omitted">No runs with both compute/flops and eval/loss');
    expect(renderReportMarkdown(report)).toContain('_No induction-head evaluations in this experiment');
    // Without an architecture tag, the run name stands in.
    expect(section(report, 'runs').tables[0]!.rows.map((row) => row[2])).toEqual(['b', 'mamba']);
  });

  it('takes a K sweep (one run per K, final eval/accuracy) as the MQAR curve', async () => {
    const uri = temporaryStore();
    const sweep: SyntheticRun[] = [4, 16, 64].flatMap((k) =>
      ['mamba', 'attention'].map((architecture) => ({
        name: `${architecture}-k${k}`,
        architecture,
        params: { 'task.name': 'mqar', 'task.seq_len': 256, 'task.num_kv_pairs': k, 'model.d_model': 64 },
        metrics: { 'eval/accuracy': [architecture === 'attention' ? 1 : 1 - k / 100] },
      })),
    );
    await writeRuns(uri, 'k-sweep', sweep);
    const report = await buildExperimentReport({ uri, experiment: 'k-sweep' });
    const table = section(report, 'mqar').tables[0]!;
    expect(table.columns).toEqual(['architecture', 'd_model', 'seq_len', 'K=4', 'K=16', 'K=64']);
    expect(table.rows).toEqual([
      ['attention', '64', '256', '1.000', '1.000', '1.000'],
      ['mamba', '64', '256', '0.960', '0.840', '0.360'],
    ]);
    // One width and one length: a single panel, wide enough for a one-line axis title.
    expect(JSON.stringify(section(report, 'mqar').plot!.vegaLite)).not.toContain('"column"');
    expect(section(report, 'mqar').plot!.svg).toContain('number of key-value pairs K (log scale)');
  });

  it('lays out a grid over widths and sequence lengths as panel columns and rows', async () => {
    const uri = temporaryStore();
    const grid: SyntheticRun[] = [64, 128].flatMap((dModel) =>
      ['mamba', 'attention'].map((architecture) => ({
        name: `${architecture}-d${dModel}`,
        architecture,
        params: { 'model.d_model': dModel },
        metrics: Object.fromEntries(
          [128, 512].flatMap((seqLen) =>
            [4, 16].map((k) => [`eval/mqar/L${seqLen}_K${k}/accuracy`, [dModel / 128 - k / 100]]),
          ),
        ),
      })),
    );
    await writeRuns(uri, 'grid', grid);
    const report = await buildExperimentReport({ uri, experiment: 'grid' });
    const mqar = section(report, 'mqar');
    const encoding = (mqar.plot!.vegaLite as { encoding: Record<string, { field: string }> }).encoding;
    expect(encoding.column?.field).toBe('dModel');
    expect(encoding.row?.field).toBe('seqLen');
    expect(mqar.plot!.svg).toContain('model width d_model');
    expect(mqar.plot!.svg).toContain('sequence length (tokens)');
    expect(mqar.tables[0]!.rows).toHaveLength(8);
  });

  it('keeps the best of several runs of one configuration (a learning-rate sweep)', async () => {
    const uri = temporaryStore();
    await writeRuns(
      uri,
      'lr-sweep',
      [0.2, 0.9, 0.5].map((accuracy, index) => ({
        name: `lr${index}`,
        architecture: 'mamba',
        params: { 'model.d_model': 64 },
        metrics: { 'eval/mqar/L64_K8/accuracy': [accuracy] },
      })),
    );
    const report = await buildExperimentReport({ uri, experiment: 'lr-sweep' });
    expect(section(report, 'mqar').tables[0]!.rows).toEqual([['mamba', '64', '64', '0.900']]);
  });
});

describe('loss-vs-compute axes of runs that barely differ', () => {
  // Vega labels a log axis of zero width with its one raw value; before the domain was widened,
  // these reports showed a lone y tick '0.242701167583'.
  const LOSS = 0.242701167583;
  const experiments: Record<string, [compute: number, loss: number][]> = {
    'one run': [[3e12, LOSS]],
    'one loss at four computes': [
      [1e15, LOSS],
      [4e15, LOSS],
      [2e16, LOSS],
      [5e16, LOSS],
    ],
    'losses 1e-12 apart': [
      [1e15, LOSS],
      [4e15, LOSS + 1e-12],
    ],
  };

  for (const [name, points] of Object.entries(experiments)) {
    it(`rounds the tick labels and shows several loss ticks: ${name}`, async () => {
      const uri = temporaryStore();
      await writeRuns(
        uri,
        'flat',
        points.map(([compute, loss], index) => ({
          name: `run${index}`,
          architecture: 'mamba',
          metrics: { 'compute/flops': [compute], 'eval/loss': [loss] },
        })),
      );
      const report = await buildExperimentReport({ uri, experiment: 'flat' });
      const svg = section(report, 'compute').plot!.svg;
      expectShortTickLabels(svg, name);
      const lossTicks = tickLabelsByAxis(svg)[1] ?? [];
      expect(lossTicks.length).toBeGreaterThanOrEqual(3);
      // The ticks bracket the runs' loss.
      expect(Math.min(...lossTicks.map(Number))).toBeLessThan(LOSS);
      expect(Math.max(...lossTicks.map(Number))).toBeGreaterThan(LOSS);
    });
  }
});

describe('report errors', () => {
  it('names an unknown experiment and lists the existing ones', async () => {
    const uri = temporaryStore();
    await writeRuns(uri, 'real', [{ name: 'a', architecture: 'mamba' }]);
    const error = await buildExperimentReport({ uri, experiment: 'typo' }).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(InterleaveError);
    expect((error as Error).message).toBe(
      `unknown MLflow experiment 'typo' in ${uri} (experiments: 'Default', 'real')`,
    );
  });

  it('says when an experiment has nothing but earlier reports', async () => {
    const uri = temporaryStore();
    await writeRuns(uri, 'only-reports', [{ name: 'report', tags: { 'interleave.kind': 'report' } }]);
    await expect(buildExperimentReport({ uri, experiment: 'only-reports' })).rejects.toThrow(
      new InterleaveError(`MLflow experiment 'only-reports' in ${uri} has no runs to report`),
    );
  });
});

describe('MAD section', () => {
  it('shows, per architecture, the best run of each MAD task and the mean where all six ran', async () => {
    const uri = temporaryStore();
    const tasks = [
      'mad_in_context_recall',
      'mad_fuzzy_recall',
      'mad_noisy_recall',
      'mad_selective_copying',
      'mad_compression',
      'mad_memorization',
    ];
    await writeRuns(uri, 'mad', [
      // attention: every task, two learning rates on recall (the better one counts).
      ...tasks.map((task, index) => ({
        name: `attention-${task}`,
        architecture: 'attention',
        params: { 'task.name': task },
        metrics: { 'eval/accuracy': [0.5 + index / 20] },
      })),
      {
        name: 'attention-recall-low-lr',
        architecture: 'attention',
        params: { 'task.name': tasks[0]! },
        metrics: { 'eval/accuracy': [0.9] },
      },
      // mamba: two tasks only, and a failed run that must not count.
      {
        name: 'mamba-recall',
        architecture: 'mamba',
        params: { 'task.name': tasks[0]! },
        metrics: { 'eval/accuracy': [0.3] },
      },
      {
        name: 'mamba-copy',
        architecture: 'mamba',
        params: { 'task.name': tasks[3]! },
        metrics: { 'eval/accuracy': [0.4] },
      },
      {
        name: 'mamba-failed',
        architecture: 'mamba',
        status: 'FAILED',
        params: { 'task.name': tasks[1]! },
        metrics: { 'eval/accuracy': [0.99] },
      },
      { name: 'mqar', architecture: 'mamba', params: { 'task.name': 'mqar' }, metrics: { 'eval/accuracy': [1] } },
    ]);
    const report = await buildExperimentReport({ uri, experiment: 'mad' });
    const table = section(report, 'mad').tables[0]!;
    expect(table.columns).toEqual([
      'architecture',
      'in-context recall',
      'fuzzy recall',
      'noisy recall',
      'selective copying',
      'compression',
      'memorization',
      'mean',
      'runs',
    ]);
    // attention: recall 0.9 (best of 0.5 and 0.9), then 0.55 … 0.75; mean (0.9 + 0.55 + 0.6 + 0.65 + 0.7 + 0.75) / 6.
    expect(table.rows).toEqual([
      ['attention', '0.900', '0.550', '0.600', '0.650', '0.700', '0.750', '0.692', '7'],
      ['mamba', '0.300', '–', '–', '0.400', '–', '–', '–', '2'],
    ]);
    expect(section(report, 'mad').notes).toEqual(['No mean for mamba: not every MAD task has a finished run.']);
    expect(renderReportMarkdown(report)).toContain('MAD synthetic tasks');
  });
});
