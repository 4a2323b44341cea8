import type { ExperimentReport } from './report-document.js';

/** The line under a report's title: "12 runs (10 finished) from the MLflow store ./mlruns, generated 2026-11-23 10:00 UTC." */
export function summaryLine(report: ExperimentReport): string {
  const when = `${report.generatedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
  const runs = `${report.runCount} run${report.runCount === 1 ? '' : 's'} (${report.finishedRunCount} finished)`;
  return `${runs} from the MLflow store ${report.uri}, generated ${when}.`;
}
