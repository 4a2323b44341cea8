import type { TopLevelSpec } from 'vega-lite';
import type { ReportPlot } from './report-document.js';

/** Shared look of every plot: readable sizes, no border box, a plain sans-serif font. */
const PLOT_CONFIG: TopLevelSpec['config'] = {
  font: 'Helvetica, Arial, sans-serif',
  view: { stroke: '#ddd' },
  axis: { titleFontSize: 13, labelFontSize: 11, titleFontWeight: 'normal', gridColor: '#eee' },
  legend: { titleFontSize: 12, labelFontSize: 12, labelLimit: 260, symbolSize: 90 },
  title: { fontSize: 15, subtitleFontSize: 12, subtitleColor: '#555', anchor: 'start', offset: 12 },
  header: { titleFontSize: 13, labelFontSize: 12 },
  point: { size: 45, filled: true },
  line: { strokeWidth: 2 },
};

/**
 * Compiles a Vega-Lite spec and renders it to SVG without a browser: Vega's headless view
 * (renderer 'none') measures text with its built-in estimates, so no canvas package is needed.
 */
export async function renderPlot(name: string, alt: string, spec: TopLevelSpec): Promise<ReportPlot> {
  // Loaded on first use: importing Vega takes about 0.4 s, which every other `interleave`
  // command (they all load @interleave/eval for its tasks) would otherwise pay.
  const [{ parse, View }, { compile }] = await Promise.all([import('vega'), import('vega-lite')]);
  const vegaLite = { ...spec, background: 'white', config: { ...PLOT_CONFIG, ...spec.config } } as TopLevelSpec;
  const vega = compile(vegaLite).spec;
  const view = new View(parse(vega), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    return { name, alt, vegaLite, vega, svg };
  } finally {
    view.finalize();
  }
}
