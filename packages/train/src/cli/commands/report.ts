import { join, relative } from 'node:path';
import { InterleaveError } from '@interleave/core';
import { buildExperimentReport, logReportRun, writeReport } from '@interleave/eval';
import { type Command, parseCommandLine } from '../command.js';

export const reportCommand: Command = {
  name: 'report',
  usage: `  report <experiment> [--uri ./mlruns] [--out <dir>] [--no-log]
      write an HTML and a Markdown report of an experiment's runs: MQAR accuracy vs. key-value
      pairs, induction-heads accuracy vs. length, loss vs. compute with fitted curves, run table
      --uri URI              MLflow tracking URI to read (default ./mlruns)
      --out DIR              where to write report.html, report.md and plots/ (default reports/<experiment>)
      --no-log               do not log the files as artifacts of a 'report' run in the experiment`,
  async run(args) {
    const { values, positionals } = parseCommandLine(args, {
      uri: { type: 'string', default: './mlruns' },
      out: { type: 'string' },
      'no-log': { type: 'boolean', default: false },
    });
    if (positionals.length !== 1) {
      throw new InterleaveError('report takes one experiment name: interleave report <experiment> [--uri ./mlruns]');
    }
    const experiment = positionals[0] as string;
    const out = values.out ?? join('reports', safeFolderName(experiment));
    const report = await buildExperimentReport({ uri: values.uri, experiment });
    const written = await writeReport(report, out);
    for (const file of written.files) process.stdout.write(`wrote ${displayPath(join(out, file.path))}\n`);
    if (!values['no-log']) {
      const run = await logReportRun(report, written, values.uri);
      process.stdout.write(`logged the report as artifacts of run ${run.runId} (experiment '${experiment}')\n`);
    }
    return 0;
  },
};

/** Experiment names may contain `/` or spaces; the default folder keeps one path segment. */
function safeFolderName(experiment: string): string {
  return experiment.replace(/[^\w.-]+/g, '_');
}

function displayPath(path: string): string {
  const shown = relative(process.cwd(), path);
  return shown.startsWith('..') ? path : shown;
}
