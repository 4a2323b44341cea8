import type { TopLevelSpec } from 'vega-lite';
import { type ColorScale, colorsFor } from './architecture-colors.js';
import type { ReportRun } from './experiment-runs.js';
import { formatAccuracy, formatCount, MISSING } from './format-cells.js';
import { accuracyAxis, decadeAxis } from './plot-axes.js';
import { renderPlot } from './render-plot.js';
import type { ReportSection, ReportTable } from './report-document.js';

/** One model: its recurrent state and the best final accuracy of its runs (e.g. over learning rates). */
interface StatePoint {
  architecture: string;
  dModel: string;
  seqLen: string;
  stateBytes: number;
  state: 'constant' | 'grows with length';
  accuracy: number;
  runs: number;
}

/**
 * Accuracy against recurrent state size (Based, Arora et al. 2024, Figure 2): each model's
 * state in bytes per sequence at its training length (the blocks' closed forms, logged as
 * `model.state_bytes_per_sequence`) against its final test accuracy, the best over runs that
 * differ only in other settings (a learning-rate sweep). States that grow with the sequence
 * (full attention's cache, Hyena's history) are marked: their size holds at that length only.
 */
export async function stateSizeSection(runs: readonly ReportRun[], colors: ColorScale): Promise<ReportSection> {
  const section: ReportSection = {
    id: 'state-size',
    title: 'Accuracy vs. recurrent state size',
    tables: [],
    notes: [],
  };
  const points = statePoints(runs);
  if (points.length < 2) {
    section.omitted =
      'Fewer than two models with a logged state size (model.state_bytes_per_sequence) and a final eval/accuracy.';
    return section;
  }
  const architectureScale = colorsFor(
    colors,
    points.map((point) => point.architecture),
  );
  const spec: TopLevelSpec = {
    title: {
      text: 'Final accuracy vs. recurrent state per sequence',
      subtitle:
        'best run of each model; hollow marks: the state grows with the sequence (sized at the training length)',
    },
    data: { values: points },
    width: 560,
    height: 320,
    mark: { type: 'point', size: 70, strokeWidth: 2 },
    encoding: {
      x: {
        field: 'stateBytes',
        type: 'quantitative',
        scale: { type: 'log' },
        axis: {
          title: 'state bytes per sequence (float32, log scale)',
          ...decadeAxis(points.map((p) => p.stateBytes)),
        },
      },
      y: accuracyAxis('final test accuracy'),
      // Outline and fill as two channels on one scale: Vega-Lite drops a `color` encoding that
      // comes with a `fill`, which left the hollow (growing-state) marks without any outline.
      stroke: { field: 'architecture', type: 'nominal', scale: architectureScale, legend: { title: 'architecture' } },
      fill: {
        condition: {
          test: "datum.state === 'constant'",
          field: 'architecture',
          type: 'nominal',
          scale: architectureScale,
          legend: { title: 'architecture' },
        },
        value: 'transparent',
      },
      shape: { field: 'state', type: 'nominal', legend: { title: 'state' } },
    },
  };
  section.plot = await renderPlot('state-size', 'Final accuracy against recurrent state size per sequence', spec);
  section.description =
    'Each point is one model (architecture, width and block settings such as d_state or the window): its final test ' +
    'accuracy, the best of its runs, against the bytes its step state holds per sequence at the training length.';
  section.tables.push(stateTable(points));
  return section;
}

function statePoints(runs: readonly ReportRun[]): StatePoint[] {
  const points = new Map<string, StatePoint>();
  for (const run of runs) {
    if (run.status !== 'FINISHED' || run.stateBytes === undefined || run.stateBytes <= 0) continue;
    if (run.evalAccuracy === undefined || !Number.isFinite(run.evalAccuracy)) continue;
    const dModel = run.dModel === undefined ? MISSING : String(run.dModel);
    const seqLen = run.seqLen === undefined ? MISSING : String(run.seqLen);
    // The state size tells models of one architecture and width apart (d_state, window, ...).
    const key = JSON.stringify([run.architecture, dModel, seqLen, run.stateBytes]);
    const point = points.get(key);
    if (point === undefined) {
      points.set(key, {
        architecture: run.architecture,
        dModel,
        seqLen,
        stateBytes: run.stateBytes,
        state: run.stateGrows ? 'grows with length' : 'constant',
        accuracy: run.evalAccuracy,
        runs: 1,
      });
    } else {
      point.runs += 1;
      point.accuracy = Math.max(point.accuracy, run.evalAccuracy);
    }
  }
  return [...points.values()].sort(
    (a, b) => a.architecture.localeCompare(b.architecture) || a.stateBytes - b.stateBytes,
  );
}

function stateTable(points: readonly StatePoint[]): ReportTable {
  return {
    caption: 'Final test accuracy by recurrent state size (best of each model’s runs)',
    columns: ['architecture', 'd_model', 'seq_len', 'state bytes/sequence', 'state', 'accuracy', 'runs'],
    rows: points.map((point) => [
      point.architecture,
      point.dModel,
      point.seqLen,
      formatCount(point.stateBytes),
      point.state,
      formatAccuracy(point.accuracy),
      String(point.runs),
    ]),
    numeric: [false, true, true, true, false, true, true],
  };
}
