import type { Spec as VegaSpec } from 'vega';
import type { TopLevelSpec } from 'vega-lite';

/**
 * A report as data, before it becomes HTML or Markdown: both renderers walk the same
 * sections, so the two files cannot disagree about a number.
 */
export interface ExperimentReport {
  experiment: string;
  uri: string;
  generatedAt: Date;
  /** Runs read (every status), earlier reports excluded. */
  runCount: number;
  finishedRunCount: number;
  sections: ReportSection[];
}

export interface ReportSection {
  /** Anchor id, also the stem of the section's plot file. */
  id: string;
  title: string;
  /** What the section shows; absent when the section has no data (then `omitted` says why). */
  description?: string;
  /** Set when there was no data for the section: the one line shown instead. */
  omitted?: string;
  plot?: ReportPlot;
  tables: ReportTable[];
  /** Remarks below the tables (e.g. architectures with too few points for a fit). */
  notes: string[];
}

export interface ReportPlot {
  /** File stem: the plot is written as `plots/<name>.svg`. */
  name: string;
  /** Alternative text for the image. */
  alt: string;
  vegaLite: TopLevelSpec;
  /** The compiled Vega spec the SVG was rendered from. */
  vega: VegaSpec;
  svg: string;
}

export interface ReportTable {
  caption?: string;
  columns: string[];
  /** Cells already formatted as text. */
  rows: string[][];
  /** Columns of numbers are right-aligned. */
  numeric: boolean[];
}
