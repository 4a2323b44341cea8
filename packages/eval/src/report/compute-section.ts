import type { TopLevelSpec } from 'vega-lite';
import { COMPUTE_LAW_MIN_POINTS, type ComputeLawFit, type ComputeLawOptions, fitComputeLaw } from '../scaling/index.js';
import { type ColorScale, colorsFor } from './architecture-colors.js';
import type { ReportRun } from './experiment-runs.js';
import { formatWithInterval } from './format-cells.js';
import { decadeAxis, type PlotLayer, widenedLogDomain } from './plot-axes.js';
import { renderPlot } from './render-plot.js';
import type { ReportSection, ReportTable } from './report-document.js';

const CURVE_SAMPLES = 80;

interface ComputePoint {
  architecture: string;
  runName: string;
  compute: number;
  loss: number;
}

/**
 * Final eval loss against training compute on log-log axes, one fitted `L(C) = E + A·C^−α`
 * curve per architecture (docs/design.md#compute-law), drawn over the compute range its runs cover: the fit says
 * nothing trustworthy beyond it.
 */
export async function computeSection(
  runs: readonly ReportRun[],
  colors: ColorScale,
  fitOptions: ComputeLawOptions,
): Promise<ReportSection> {
  const section: ReportSection = { id: 'compute', title: 'Loss vs. training compute', tables: [], notes: [] };
  const points = computePoints(runs);
  if (points.length === 0) {
    section.omitted =
      'No runs with both compute/flops and eval/loss in this experiment, so there is no loss-vs-compute plot.';
    return section;
  }
  const architectures = [...new Set(points.map((point) => point.architecture))].sort();
  const fits: { architecture: string; fit: ComputeLawFit }[] = [];
  for (const architecture of architectures) {
    const own = points.filter((point) => point.architecture === architecture);
    if (own.length < COMPUTE_LAW_MIN_POINTS) {
      section.notes.push(
        `${architecture}: ${own.length} run${own.length === 1 ? '' : 's'} with compute and loss; a fit needs at least ${COMPUTE_LAW_MIN_POINTS}.`,
      );
      continue;
    }
    try {
      fits.push({ architecture, fit: fitComputeLaw(own, fitOptions) });
    } catch (error) {
      section.notes.push(
        `${architecture}: the fit failed (${error instanceof Error ? error.message : String(error)}).`,
      );
    }
  }
  const curves = fits.flatMap(({ architecture, fit }) =>
    sampleCurve(
      fit,
      points.filter((point) => point.architecture === architecture),
    ).map((sample) => ({
      architecture,
      ...sample,
    })),
  );
  const color = {
    field: 'architecture',
    type: 'nominal' as const,
    scale: colorsFor(colors, architectures),
    legend: { title: 'architecture' },
  };
  // Runs at one compute or one loss (a single run, say) would leave an axis without extent.
  const computeDomain = widenedLogDomain(
    points.map((point) => point.compute),
    10,
  );
  const lossDomain = widenedLogDomain([...points, ...curves].map((point) => point.loss));
  const x = {
    field: 'compute',
    type: 'quantitative' as const,
    scale: { type: 'log' as const, ...(computeDomain && { domain: computeDomain }) },
    axis: {
      title: 'training compute (FLOPs, log scale)',
      ...decadeAxis([...points.map((point) => point.compute), ...(computeDomain ?? [])]),
    },
  };
  const y = {
    field: 'loss',
    type: 'quantitative' as const,
    // Losses rarely span a decade: rounding the domain out to 1 and 10 would squash the points.
    scale: { type: 'log' as const, nice: false, padding: 12, ...(lossDomain && { domain: lossDomain }) },
    axis: { title: 'eval loss (nats/token, log scale)', format: '~g' },
  };
  const layers: PlotLayer[] = [];
  if (curves.length > 0) layers.push({ data: { values: curves }, mark: { type: 'line' }, encoding: { x, y, color } });
  layers.push({
    data: { values: points },
    mark: { type: 'point', filled: true, size: 60, opacity: 0.9 },
    encoding: { x, y, color },
  });
  const spec: TopLevelSpec = {
    title: {
      text: 'Eval loss vs. training compute',
      subtitle:
        fits.length > 0
          ? 'points: runs (final eval loss); lines: fitted L(C) = E + A·C^−α per architecture'
          : 'points: runs (final eval loss); no architecture has enough runs for a fit',
    },
    width: 560,
    height: 320,
    layer: layers,
  };
  section.plot = await renderPlot('loss-vs-compute', 'Eval loss against training compute, with fitted curves', spec);
  section.description = `Final held-out loss of each finished run against its cumulative training FLOPs (forward and backward, counted per block), with L(C) = E + A·C^−α fitted per architecture that has at least ${COMPUTE_LAW_MIN_POINTS} runs.`;
  if (fits.length > 0) section.tables.push(fitTable(fits));
  return section;
}

function computePoints(runs: readonly ReportRun[]): ComputePoint[] {
  const points: ComputePoint[] = [];
  for (const run of runs) {
    const { computeFlops: compute, evalLoss: loss } = run;
    if (run.status !== 'FINISHED' || compute === undefined || loss === undefined) continue;
    // Log axes cannot show zero or negative values, and a diverged run's NaN is no point.
    if (!(compute > 0 && loss > 0 && Number.isFinite(compute) && Number.isFinite(loss))) continue;
    points.push({ architecture: run.architecture, runName: run.runName, compute, loss });
  }
  return points;
}

function sampleCurve(fit: ComputeLawFit, own: readonly ComputePoint[]): { compute: number; loss: number }[] {
  const logs = own.map((point) => Math.log(point.compute));
  const low = Math.min(...logs);
  const high = Math.max(...logs);
  const samples: { compute: number; loss: number }[] = [];
  for (let index = 0; index < CURVE_SAMPLES; index++) {
    const compute = Math.exp(low + ((high - low) * index) / (CURVE_SAMPLES - 1));
    const loss = fit.E + fit.A * compute ** -fit.alpha;
    if (Number.isFinite(loss) && loss > 0) samples.push({ compute, loss });
  }
  return samples;
}

function fitTable(fits: readonly { architecture: string; fit: ComputeLawFit }[]): ReportTable {
  const confidence = fits[0]?.fit.confidence ?? 0.95;
  return {
    caption: `Fitted L(C) = E + A·C^−α per architecture, with ${Math.round(confidence * 100)}% bootstrap confidence intervals`,
    columns: ['architecture', 'runs', 'E (nats/token)', 'A', 'α', 'confidence'],
    rows: fits.map(({ architecture, fit }) => [
      architecture,
      String(fit.points),
      formatWithInterval(fit.E, fit.intervals.E),
      formatWithInterval(fit.A, fit.intervals.A),
      formatWithInterval(fit.alpha, fit.intervals.alpha),
      `${Number((fit.confidence * 100).toFixed(1))}%`,
    ]),
    numeric: [false, true, true, true, true, true],
  };
}
