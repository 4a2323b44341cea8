import type { ReportRun } from './experiment-runs.js';
import { formatAccuracy, formatCount, formatFlops, formatLoss, MISSING, shortRunId } from './format-cells.js';
import type { ReportSection } from './report-document.js';

/** Every run the report read, whatever its status: the plots use only the finished ones. */
export function runTableSection(runs: readonly ReportRun[]): ReportSection {
  const ordered = [...runs].sort(
    (a, b) =>
      a.architecture.localeCompare(b.architecture) || a.startTime - b.startTime || a.runId.localeCompare(b.runId),
  );
  const section: ReportSection = {
    id: 'runs',
    title: 'Runs',
    description:
      'Every run of the experiment (earlier reports excluded), by architecture. Steps are those run, of those configured where a run stopped early. Accuracy and loss are the final held-out evaluation; compute is the cumulative training FLOPs.',
    tables: [
      {
        columns: [
          'run',
          'id',
          'architecture',
          'status',
          'parameters',
          'd_model',
          'seq_len',
          'steps',
          'eval accuracy',
          'eval loss',
          'compute (FLOPs)',
          'backend',
        ],
        rows: ordered.map((run) => [
          run.runName || MISSING,
          shortRunId(run.runId),
          run.architecture,
          run.status,
          formatCount(run.parameters),
          formatCount(run.dModel),
          formatCount(run.seqLen),
          stepsCell(run),
          formatAccuracy(run.evalAccuracy),
          formatLoss(run.evalLoss),
          formatFlops(run.computeFlops),
          run.backend ?? MISSING,
        ]),
        numeric: [false, false, false, false, true, true, true, true, true, true, true, false],
      },
    ],
    notes: [],
  };
  const unfinished = runs.filter((run) => run.status !== 'FINISHED');
  if (unfinished.length > 0) {
    const counts = new Map<string, number>();
    for (const run of unfinished) counts.set(run.status, (counts.get(run.status) ?? 0) + 1);
    const summary = [...counts].map(([status, count]) => `${count} ${status}`).join(', ');
    section.notes.push(
      `${unfinished.length} run${unfinished.length === 1 ? ' is' : 's are'} not finished (${summary}); the plots leave ${unfinished.length === 1 ? 'it' : 'them'} out.`,
    );
  }
  return section;
}

/** `5,700 of 12,500` for a run that stopped before its configured steps, else the steps. */
function stepsCell(run: ReportRun): string {
  if (run.stepsRun !== undefined && run.steps !== undefined && run.stepsRun < run.steps)
    return `${formatCount(run.stepsRun)} of ${formatCount(run.steps)}`;
  return formatCount(run.steps ?? run.stepsRun);
}
