import type { TopLevelSpec } from 'vega-lite';
import { type ColorScale, colorsFor } from './architecture-colors.js';
import type { ReportRun } from './experiment-runs.js';
import { formatAccuracy, MISSING } from './format-cells.js';
import { accuracyAxis, facetCellWidth } from './plot-axes.js';
import { renderPlot } from './render-plot.js';
import type { ReportSection, ReportTable } from './report-document.js';

/** One point: the best final accuracy of the runs of one configuration at one learning rate. */
interface RatePoint {
  architecture: string;
  dModel: string;
  seqLen: string;
  learningRate: number;
  accuracy: number;
  runs: number;
}

/** How close to a configuration's best accuracy a learning rate must come to count as working. */
export const LEARNING_RATE_TOLERANCE = 0.05;

/**
 * Learning-rate robustness: each configuration's final test accuracy at every learning rate of
 * its sweep, not only the best. Recurrent models are reported to succeed only in a narrow window
 * of learning rates (Zoology, Based); a table of best-of-sweep results hides that, this section
 * shows it. A configuration is an architecture at one width and training length; where several
 * runs share one learning rate (other settings swept too), the best of them counts.
 */
export async function learningRateSection(runs: readonly ReportRun[], colors: ColorScale): Promise<ReportSection> {
  const section: ReportSection = {
    id: 'learning-rate',
    title: 'Learning-rate robustness: accuracy across the whole sweep',
    tables: [],
    notes: [],
  };
  const points = ratePoints(runs);
  const swept = groups(points).filter((group) => group.length > 1);
  if (swept.length === 0) {
    section.omitted =
      'No configuration was trained at more than one learning rate (train.optimizer.lr) with a final eval/accuracy.';
    return section;
  }
  const shown = swept.flat();
  const dModels = distinct(shown.map((point) => point.dModel)).sort((a, b) => Number(a) - Number(b));
  const seqLens = distinct(shown.map((point) => point.seqLen)).sort((a, b) => Number(a) - Number(b));
  const rates = distinct(shown.map((point) => point.learningRate)).sort((a, b) => a - b);
  const facets: Record<string, unknown> = {};
  if (dModels.length > 1) {
    facets.column = { field: 'dModel', type: 'ordinal', sort: dModels, header: { title: 'model width d_model' } };
  }
  if (seqLens.length > 1) {
    facets.row = { field: 'seqLen', type: 'ordinal', sort: seqLens, header: { title: 'training length (tokens)' } };
  }
  const spec: TopLevelSpec = {
    title: {
      text: 'Final accuracy vs. learning rate',
      subtitle: 'every learning rate of the sweep; the best of several runs at one rate',
    },
    data: { values: shown },
    width: facetCellWidth(dModels.length),
    height: dModels.length > 1 ? 220 : 300,
    mark: { type: 'line', point: true },
    encoding: {
      ...facets,
      x: {
        field: 'learningRate',
        type: 'quantitative',
        scale: { type: 'log' },
        axis: { title: 'peak learning rate (log scale)', values: rates, format: '.0e' },
      },
      y: accuracyAxis('final test accuracy'),
      color: {
        field: 'architecture',
        type: 'nominal',
        scale: colorsFor(
          colors,
          shown.map((point) => point.architecture),
        ),
        legend:
          dModels.length > 1
            ? { title: 'architecture', orient: 'bottom', direction: 'horizontal' }
            : { title: 'architecture' },
      },
    },
  };
  section.plot = await renderPlot('learning-rate', 'Final accuracy against learning rate, per architecture', spec);
  section.description =
    'Final test accuracy of every run of a learning-rate sweep, per architecture' +
    `${dModels.length > 1 ? ' and model width' : ''}${seqLens.length > 1 ? ' and training length' : ''}. ` +
    `The last column counts the learning rates within ${LEARNING_RATE_TOLERANCE} of the configuration's best: ` +
    'a narrow window means the best-of-sweep number depends on having hit it.';
  section.tables.push(rateTable(swept, rates));
  return section;
}

function ratePoints(runs: readonly ReportRun[]): RatePoint[] {
  const points = new Map<string, RatePoint>();
  for (const run of runs) {
    if (run.status !== 'FINISHED' || run.learningRate === undefined) continue;
    if (run.evalAccuracy === undefined || !Number.isFinite(run.evalAccuracy)) continue;
    const dModel = run.dModel === undefined ? MISSING : String(run.dModel);
    const seqLen = run.seqLen === undefined ? MISSING : String(run.seqLen);
    const key = JSON.stringify([run.architecture, dModel, seqLen, run.learningRate]);
    const point = points.get(key);
    if (point === undefined) {
      points.set(key, {
        architecture: run.architecture,
        dModel,
        seqLen,
        learningRate: run.learningRate,
        accuracy: run.evalAccuracy,
        runs: 1,
      });
    } else {
      point.runs += 1;
      point.accuracy = Math.max(point.accuracy, run.evalAccuracy);
    }
  }
  return [...points.values()];
}

/** Points grouped by configuration (architecture, width, length), each group sorted by learning rate. */
function groups(points: readonly RatePoint[]): RatePoint[][] {
  const byConfiguration = new Map<string, RatePoint[]>();
  for (const point of points) {
    const key = JSON.stringify([point.architecture, point.dModel, point.seqLen]);
    byConfiguration.set(key, [...(byConfiguration.get(key) ?? []), point]);
  }
  return [...byConfiguration.values()]
    .map((group) => group.sort((a, b) => a.learningRate - b.learningRate))
    .sort(
      ([a], [b]) =>
        (a as RatePoint).architecture.localeCompare((b as RatePoint).architecture) ||
        Number((a as RatePoint).dModel) - Number((b as RatePoint).dModel) ||
        Number((a as RatePoint).seqLen) - Number((b as RatePoint).seqLen),
    );
}

function rateTable(swept: readonly RatePoint[][], rates: readonly number[]): ReportTable {
  return {
    caption: 'Final test accuracy by peak learning rate',
    columns: [
      'architecture',
      'd_model',
      'seq_len',
      ...rates.map((rate) => rate.toExponential(1)),
      `rates within ${LEARNING_RATE_TOLERANCE} of best`,
    ],
    rows: swept.map((group) => {
      const first = group[0] as RatePoint;
      const best = Math.max(...group.map((point) => point.accuracy));
      const working = group.filter((point) => point.accuracy >= best - LEARNING_RATE_TOLERANCE).length;
      return [
        first.architecture,
        first.dModel,
        first.seqLen,
        ...rates.map((rate) => formatAccuracy(group.find((point) => point.learningRate === rate)?.accuracy)),
        `${working} of ${group.length}`,
      ];
    }),
    numeric: [false, true, true, ...rates.map(() => true), false],
  };
}

function distinct<T>(values: readonly T[]): T[] {
  return [...new Set(values)];
}
