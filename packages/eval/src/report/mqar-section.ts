import type { TopLevelSpec } from 'vega-lite';
import { type ColorScale, colorsFor } from './architecture-colors.js';
import type { ReportRun } from './experiment-runs.js';
import { formatAccuracy, MISSING } from './format-cells.js';
import { accuracyAxis, facetCellWidth, powerOfTwoLabels } from './plot-axes.js';
import { renderPlot } from './render-plot.js';
import type { ReportSection, ReportTable } from './report-document.js';

/** One point of the plot: the best accuracy any run of this configuration reached at K. */
interface MqarCell {
  architecture: string;
  dModel: string;
  seqLen: number;
  numKvPairs: number;
  accuracy: number;
  runs: number;
}

/**
 * MQAR accuracy against the number of key-value pairs, Zoology-style: one line per architecture,
 * a column per model width (or per sequence length). Runs that differ only in other settings,
 * usually a learning-rate sweep, count with their best accuracy, as Zoology reports them.
 */
export async function mqarSection(runs: readonly ReportRun[], colors: ColorScale): Promise<ReportSection> {
  const section: ReportSection = {
    id: 'mqar',
    title: 'MQAR: accuracy vs. number of key-value pairs',
    tables: [],
    notes: [],
  };
  const cells = bestCells(runs);
  if (cells.length === 0) {
    section.omitted =
      'No MQAR evaluations in this experiment (no eval/mqar/L<seq>_K<k>/accuracy metrics, nor MQAR runs with a final eval/accuracy).';
    return section;
  }
  const dModels = distinct(cells.map((cell) => cell.dModel)).sort((a, b) => Number(a) - Number(b));
  const seqLens = distinct(cells.map((cell) => cell.seqLen)).sort((a, b) => a - b);
  const kValues = distinct(cells.map((cell) => cell.numKvPairs)).sort((a, b) => a - b);
  const byWidth = dModels.length > 1;
  const bySeqLen = seqLens.length > 1;
  const columns = byWidth ? dModels.length : bySeqLen ? seqLens.length : 1;
  const logK = (kValues.at(-1) as number) / (kValues[0] as number) >= 4;
  const swept = cells.some((cell) => cell.runs > 1);

  const facets: Record<string, unknown> = {};
  if (byWidth) {
    facets.column = { field: 'dModel', type: 'ordinal', sort: dModels, header: { title: 'model width d_model' } };
  }
  if (bySeqLen) {
    facets[byWidth ? 'row' : 'column'] = {
      field: 'seqLen',
      type: 'ordinal',
      sort: seqLens,
      header: { title: 'sequence length (tokens)' },
    };
  }
  const spec: TopLevelSpec = {
    title: {
      text: 'MQAR accuracy vs. number of key-value pairs',
      subtitle: swept ? 'best run of each configuration (e.g. over learning rates)' : 'final evaluation of each run',
    },
    data: { values: cells },
    width: facetCellWidth(columns),
    height: columns > 1 ? 240 : 320,
    mark: { type: 'line', point: true },
    encoding: {
      ...facets,
      x: {
        field: 'numKvPairs',
        type: 'quantitative',
        scale: logK ? { type: 'log', base: 2 } : { zero: false },
        axis: { title: kAxisTitle(logK, columns), values: kValues, ...powerOfTwoLabels },
      },
      y: accuracyAxis('accuracy (fraction of queries correct)'),
      color: {
        field: 'architecture',
        type: 'nominal',
        scale: colorsFor(
          colors,
          cells.map((cell) => cell.architecture),
        ),
        // Beside a row of panels the legend would push the figure past the page width.
        legend:
          columns > 1
            ? { title: 'architecture', orient: 'bottom', direction: 'horizontal' }
            : { title: 'architecture' },
      },
    },
  };
  section.plot = await renderPlot('mqar-accuracy', 'MQAR accuracy against the number of key-value pairs', spec);
  section.description = `Accuracy on the query positions of held-out MQAR examples, by the number of key-value pairs K to recall${byWidth ? ', one panel per model width' : ''}${bySeqLen ? ', per sequence length' : ''}.${swept ? ' Where several runs share an architecture, width, length and K, the best one counts.' : ''}`;
  section.tables.push(accuracyTable(cells, kValues));
  return section;
}

/** Narrow panels get the title on two lines: one line is wider than the panel. */
function kAxisTitle(logK: boolean, columns: number): string | string[] {
  const title = 'number of key-value pairs K';
  if (!logK) return title;
  return columns > 1 ? [title, '(log scale)'] : `${title} (log scale)`;
}

function bestCells(runs: readonly ReportRun[]): MqarCell[] {
  const cells = new Map<string, MqarCell>();
  for (const run of runs) {
    if (run.status !== 'FINISHED') continue;
    const dModel = run.dModel === undefined ? MISSING : String(run.dModel);
    for (const point of run.mqar) {
      if (!Number.isFinite(point.accuracy)) continue;
      const key = JSON.stringify([run.architecture, dModel, point.seqLen, point.numKvPairs]);
      const cell = cells.get(key);
      if (cell === undefined) {
        cells.set(key, {
          architecture: run.architecture,
          dModel,
          seqLen: point.seqLen,
          numKvPairs: point.numKvPairs,
          accuracy: point.accuracy,
          runs: 1,
        });
      } else {
        cell.runs += 1;
        cell.accuracy = Math.max(cell.accuracy, point.accuracy);
      }
    }
  }
  return [...cells.values()].sort(
    (a, b) =>
      a.architecture.localeCompare(b.architecture) ||
      Number(a.dModel) - Number(b.dModel) ||
      a.seqLen - b.seqLen ||
      a.numKvPairs - b.numKvPairs,
  );
}

function accuracyTable(cells: readonly MqarCell[], kValues: readonly number[]): ReportTable {
  const rows = new Map<string, string[]>();
  for (const cell of cells) {
    const key = JSON.stringify([cell.architecture, cell.dModel, cell.seqLen]);
    let row = rows.get(key);
    if (row === undefined) {
      row = [cell.architecture, cell.dModel, String(cell.seqLen), ...kValues.map(() => MISSING)];
      rows.set(key, row);
    }
    row[3 + kValues.indexOf(cell.numKvPairs)] = formatAccuracy(cell.accuracy);
  }
  return {
    caption: 'MQAR accuracy by number of key-value pairs K',
    columns: ['architecture', 'd_model', 'seq_len', ...kValues.map((k) => `K=${k}`)],
    rows: [...rows.values()],
    numeric: [false, true, true, ...kValues.map(() => true)],
  };
}

function distinct<T>(values: readonly T[]): T[] {
  return [...new Set(values)];
}
