import type { ComputeLawOptions } from '../scaling/index.js';
import { architectureColors } from './architecture-colors.js';
import { computeSection } from './compute-section.js';
import { loadExperimentRuns } from './experiment-runs.js';
import { inductionSection } from './induction-section.js';
import { learningRateSection } from './learning-rate-section.js';
import { madSection } from './mad-section.js';
import { mqarSection } from './mqar-section.js';
import type { ExperimentReport } from './report-document.js';
import { runTableSection } from './run-table-section.js';
import { stateSizeSection } from './state-size-section.js';

export interface BuildReportOptions {
  /** MLflow tracking URI: `./mlruns`, a path, or `file:///…`. */
  uri: string;
  experiment: string;
  /** Passed to `fitComputeLaw`; the default seed makes two reports of the same runs identical. */
  fit?: ComputeLawOptions;
  /** The time the report says it was made (tests fix it). */
  now?: Date;
}

export const DEFAULT_REPORT_FIT_OPTIONS: ComputeLawOptions = { seed: 1 };

/** Reads an experiment's runs and turns them into report sections with rendered plots. */
export async function buildExperimentReport(options: BuildReportOptions): Promise<ExperimentReport> {
  const runs = await loadExperimentRuns(options.uri, options.experiment);
  const finished = runs.filter((run) => run.status === 'FINISHED');
  // Colours come from every run, so adding a section's data never repaints the others.
  const colors = architectureColors(runs.map((run) => run.architecture));
  return {
    experiment: options.experiment,
    uri: options.uri,
    generatedAt: options.now ?? new Date(),
    runCount: runs.length,
    finishedRunCount: finished.length,
    sections: [
      await mqarSection(runs, colors),
      await inductionSection(runs, colors),
      await learningRateSection(runs, colors),
      await stateSizeSection(runs, colors),
      await computeSection(runs, colors, options.fit ?? DEFAULT_REPORT_FIT_OPTIONS),
      madSection(runs),
      runTableSection(runs),
    ],
  };
}
