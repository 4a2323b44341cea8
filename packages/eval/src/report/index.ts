export { architectureColors, type ColorScale } from './architecture-colors.js';
export { type BuildReportOptions, buildExperimentReport, DEFAULT_REPORT_FIT_OPTIONS } from './build-report.js';
export {
  type InductionPoint,
  loadExperimentRuns,
  type MqarPoint,
  REPORT_KIND,
  REPORT_KIND_TAG,
  type ReportRun,
} from './experiment-runs.js';
export { logReportRun } from './log-report-run.js';
export { MAD_TASKS, madSection } from './mad-section.js';
export { renderReportHtml } from './render-html.js';
export { renderReportMarkdown } from './render-markdown.js';
export type { ExperimentReport, ReportPlot, ReportSection, ReportTable } from './report-document.js';
export { type ReportFiles, writeReport } from './write-report.js';
