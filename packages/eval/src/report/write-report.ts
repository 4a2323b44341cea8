import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@interleave/core';
import { renderReportHtml } from './render-html.js';
import { PLOTS_FOLDER, renderReportMarkdown } from './render-markdown.js';
import type { ExperimentReport } from './report-document.js';

/** The files of a written report, as paths relative to its folder and their contents. */
export interface ReportFiles {
  directory: string;
  /** `report.html`, `report.md` and `plots/<name>.svg`, relative to `directory`. */
  files: { path: string; content: string }[];
}

/** Renders `report` and writes report.html, report.md and plots/*.svg into `directory`. */
export async function writeReport(report: ExperimentReport, directory: string): Promise<ReportFiles> {
  const files = [
    { path: 'report.html', content: renderReportHtml(report) },
    { path: 'report.md', content: renderReportMarkdown(report) },
    ...report.sections.flatMap((section) =>
      section.plot ? [{ path: `${PLOTS_FOLDER}/${section.plot.name}.svg`, content: section.plot.svg }] : [],
    ),
  ];
  await mkdir(join(directory, PLOTS_FOLDER), { recursive: true });
  // Atomically: a disk that fills up mid-report leaves the previous report whole, not half of a new one.
  for (const file of files) await writeFileAtomic(join(directory, file.path), file.content);
  return { directory, files };
}
