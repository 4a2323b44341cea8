import { openTracker } from '@interleave/core';
import { REPORT_KIND, REPORT_KIND_TAG } from './experiment-runs.js';
import type { ExperimentReport } from './report-document.js';
import type { ReportFiles } from './write-report.js';

/**
 * Keeps the report with the experiment it describes: a new MLflow run named `report`, tagged
 * `interleave.kind=report` (which later reports skip), holding the files as artifacts.
 */
export async function logReportRun(
  report: ExperimentReport,
  written: ReportFiles,
  uri: string,
): Promise<{ runId: string; artifactLocation: string }> {
  const tracker = await openTracker({ uri, experiment: report.experiment, runName: 'report' });
  try {
    await tracker.setTags({ [REPORT_KIND_TAG]: REPORT_KIND });
    await tracker.logParams({ 'report.runs': report.runCount, 'report.finished_runs': report.finishedRunCount });
    for (const file of written.files) await tracker.logArtifact(file.path, file.content);
  } catch (error) {
    await tracker.end('FAILED');
    throw error;
  }
  await tracker.end('FINISHED');
  return { runId: tracker.runId, artifactLocation: tracker.artifactLocation };
}
