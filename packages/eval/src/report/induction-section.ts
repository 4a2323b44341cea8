import type { TopLevelSpec } from 'vega-lite';
import { type ColorScale, colorsFor } from './architecture-colors.js';
import type { InductionPoint, ReportRun } from './experiment-runs.js';
import { formatAccuracy, MISSING } from './format-cells.js';
import { accuracyAxis, type PlotLayer, powerOfTwoLabels } from './plot-axes.js';
import { renderPlot } from './render-plot.js';
import type { ReportSection, ReportTable } from './report-document.js';

/**
 * Induction-heads length extrapolation (Mamba paper §4.1): accuracy against evaluation length,
 * one line per architecture, with the training length marked. An architecture with several
 * runs is shown by its best one (highest mean accuracy over lengths); a curve stitched from
 * different runs' best points would promise an extrapolation no single model achieves. Where a
 * configuration was trained with several seeds, a table gives the mean and range over them: the
 * best of several seeds alone would flatter it.
 */
export async function inductionSection(runs: readonly ReportRun[], colors: ColorScale): Promise<ReportSection> {
  const section: ReportSection = {
    id: 'induction',
    title: 'Induction heads: accuracy vs. sequence length',
    tables: [],
    notes: [],
  };
  const chosen = bestRunPerArchitecture(runs);
  if (chosen.length === 0) {
    section.omitted = 'No induction-head evaluations in this experiment (no eval/induction/len_<n>/accuracy metrics).';
    return section;
  }
  const points = chosen.flatMap((run) =>
    run.induction
      .filter((point) => Number.isFinite(point.accuracy))
      .map((point) => ({ architecture: run.architecture, length: point.length, accuracy: point.accuracy })),
  );
  const lengths = [...new Set(points.map((point) => point.length))].sort((a, b) => a - b);
  const trainingLengths = [...new Set(chosen.flatMap((run) => (run.seqLen === undefined ? [] : [run.seqLen])))];
  const lines: PlotLayer = {
    data: { values: points },
    mark: { type: 'line', point: true },
    encoding: {
      x: {
        field: 'length',
        type: 'quantitative',
        scale: { type: 'log', base: 2 },
        axis: { title: 'sequence length (tokens, log scale)', values: lengths, ...powerOfTwoLabels },
      },
      y: accuracyAxis('accuracy (fraction correct)'),
      color: {
        field: 'architecture',
        type: 'nominal',
        scale: colorsFor(
          colors,
          chosen.map((run) => run.architecture),
        ),
        legend: { title: 'architecture' },
      },
    },
  };
  const trainingMark: PlotLayer = {
    data: { values: trainingLengths.map((length) => ({ length, label: `trained at ${length}` })) },
    layer: [
      {
        mark: { type: 'rule', strokeDash: [5, 4], color: '#444' },
        encoding: { x: { field: 'length', type: 'quantitative' } },
      },
      {
        // At the bottom: at the top the label would sit on the lines of the models that solve the task.
        mark: {
          type: 'text',
          align: 'left',
          baseline: 'bottom',
          dx: 4,
          dy: -4,
          y: { expr: 'height' },
          color: '#444',
          fontSize: 11,
        },
        encoding: { x: { field: 'length', type: 'quantitative' }, text: { field: 'label' } },
      },
    ],
  };
  const spec: TopLevelSpec = {
    title: {
      text: 'Induction heads: accuracy vs. sequence length',
      subtitle: 'dashed line: training length',
    },
    width: 560,
    height: 320,
    layer: trainingLengths.length > 0 ? [lines, trainingMark] : [lines],
  };
  section.plot = await renderPlot('induction-accuracy', 'Induction-heads accuracy against sequence length', spec);
  section.description =
    'Accuracy of recalling the token after the special token at the end of the sequence, at lengths beyond the training length (dashed line).';
  section.tables.push(accuracyTable(chosen, lengths));
  if (chosen.some((run) => run.induction.some((point) => point.interval !== undefined))) {
    section.tables.push(intervalTable(chosen, lengths));
  }
  const seeded = seedGroups(runs);
  if (seeded.length > 0) {
    section.tables.push(seedSpreadTable(seeded, lengths));
    section.notes.push(
      'Over seeds: runs whose settings differ only in seed (and where they log or evaluate). Each seed draws its own training data and test examples.',
    );
  }
  for (const run of chosen) {
    const others = runs.filter(
      (other) => other.status === 'FINISHED' && other.architecture === run.architecture && other.induction.length > 0,
    ).length;
    if (others > 1) section.notes.push(`${run.architecture}: best of ${others} runs shown (${run.runName}).`);
  }
  if (trainingLengths.length === 0)
    section.notes.push('The runs do not record task.seq_len, so the training length is not marked.');
  return section;
}

function bestRunPerArchitecture(runs: readonly ReportRun[]): ReportRun[] {
  const best = new Map<string, { run: ReportRun; score: number }>();
  for (const run of runs) {
    if (run.status !== 'FINISHED' || run.induction.length === 0) continue;
    const score = mean(run.induction.map((point) => (Number.isFinite(point.accuracy) ? point.accuracy : 0)));
    const current = best.get(run.architecture);
    if (current === undefined || score > current.score) best.set(run.architecture, { run, score });
  }
  return [...best.values()].map((entry) => entry.run).sort((a, b) => a.architecture.localeCompare(b.architecture));
}

function accuracyTable(chosen: readonly ReportRun[], lengths: readonly number[]): ReportTable {
  return {
    caption: 'Induction-heads accuracy by evaluation length (tokens)',
    columns: ['architecture', 'run', 'trained at', ...lengths.map(String)],
    rows: chosen.map((run) => [
      run.architecture,
      run.runName,
      run.seqLen === undefined ? MISSING : String(run.seqLen),
      ...lengths.map((length) => formatAccuracy(run.induction.find((point) => point.length === length)?.accuracy)),
    ]),
    numeric: [false, false, true, ...lengths.map(() => true)],
  };
}

/** The error bars: each cell's 95% Wilson interval and the examples it was measured on. */
function intervalTable(chosen: readonly ReportRun[], lengths: readonly number[]): ReportTable {
  const cell = (point: InductionPoint | undefined) =>
    point?.interval === undefined
      ? MISSING
      : `${point.interval.low.toFixed(3)}–${point.interval.high.toFixed(3)} (n=${point.interval.examples})`;
  return {
    caption: 'Induction-heads accuracy: 95% Wilson intervals (examples per length)',
    columns: ['architecture', 'run', ...lengths.map(String)],
    rows: chosen.map((run) => [
      run.architecture,
      run.runName,
      ...lengths.map((length) => cell(run.induction.find((point) => point.length === length))),
    ]),
    numeric: [false, false, ...lengths.map(() => false)],
  };
}

/**
 * Params that say where a run logs, how often, or what it evaluates afterwards, not what it
 * trains: runs that differ only in these and in `seed` are repeats of one configuration.
 */
const NOT_THE_CONFIGURATION = [
  'seed',
  'name',
  'tracking.',
  'evals.',
  'sweep.',
  'backend',
  'train.batch_threads',
  'train.batch_worker',
  'train.checkpoint_every',
  'train.eval_every',
  'train.log_every',
];

function configurationKey(run: ReportRun): string {
  const kept = Object.entries(run.params)
    .filter(
      ([key]) =>
        !NOT_THE_CONFIGURATION.some((prefix) => key === prefix || (prefix.endsWith('.') && key.startsWith(prefix))),
    )
    .sort(([a], [b]) => a.localeCompare(b));
  return `${run.architecture}\u0000${JSON.stringify(kept)}`;
}

/** Finished runs with induction points, grouped by configuration, where a group holds two seeds or more. */
function seedGroups(runs: readonly ReportRun[]): ReportRun[][] {
  const groups = new Map<string, ReportRun[]>();
  for (const run of runs) {
    if (run.status !== 'FINISHED' || run.induction.length === 0) continue;
    const key = configurationKey(run);
    groups.set(key, [...(groups.get(key) ?? []), run]);
  }
  return [...groups.values()]
    .filter((group) => new Set(group.map((run) => run.params.seed)).size > 1)
    .sort((a, b) => (a[0] as ReportRun).architecture.localeCompare((b[0] as ReportRun).architecture));
}

/** Mean and range over each group's runs at every length: how much a single run's curve can be trusted. */
function seedSpreadTable(groups: readonly ReportRun[][], lengths: readonly number[]): ReportTable {
  const cell = (group: readonly ReportRun[], length: number) => {
    const values = group
      .map((run) => run.induction.find((point) => point.length === length)?.accuracy)
      .filter((value): value is number => value !== undefined && Number.isFinite(value));
    if (values.length === 0) return MISSING;
    const range = `${formatAccuracy(Math.min(...values))}–${formatAccuracy(Math.max(...values))}`;
    return `${formatAccuracy(mean(values))} (${range}, ${values.length})`;
  };
  return {
    caption: 'Induction-heads accuracy over seeds: mean (lowest–highest, runs) of runs that differ only in seed',
    columns: ['architecture', 'seeds', ...lengths.map(String)],
    rows: groups.map((group) => [
      (group[0] as ReportRun).architecture,
      group
        .map((run) => run.params.seed ?? '?')
        .sort()
        .join(', '),
      ...lengths.map((length) => cell(group, length)),
    ]),
    numeric: [false, false, ...lengths.map(() => false)],
  };
}

function mean(values: readonly number[]): number {
  return values.reduce((sum, value) => sum + value, 0) / values.length;
}
