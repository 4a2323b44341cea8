import type { ReportRun } from './experiment-runs.js';
import { formatAccuracy, MISSING } from './format-cells.js';
import type { ReportSection } from './report-document.js';

/** MAD's six tasks in the order of its paper, with the column each gets. */
export const MAD_TASKS: readonly { task: string; column: string }[] = [
  { task: 'mad_in_context_recall', column: 'in-context recall' },
  { task: 'mad_fuzzy_recall', column: 'fuzzy recall' },
  { task: 'mad_noisy_recall', column: 'noisy recall' },
  { task: 'mad_selective_copying', column: 'selective copying' },
  { task: 'mad_compression', column: 'compression' },
  { task: 'mad_memorization', column: 'memorization' },
];

/** The best finished run of one architecture on one MAD task, and how many it was chosen from. */
interface BestOf {
  accuracy: number;
  runs: number;
}

/**
 * MAD's table (docs/design.md#mad-tasks): per architecture, each task's test accuracy as the
 * best of its finished runs — MAD's protocol sweeps learning rate × weight decay and keeps the
 * best per task — and the mean over the six tasks, given only when all six were run (a mean
 * over fewer tasks would not be comparable with MAD's).
 */
export function madSection(runs: readonly ReportRun[]): ReportSection {
  const section: ReportSection = { id: 'mad', title: 'MAD synthetic tasks', tables: [], notes: [] };
  const best = new Map<string, Map<string, BestOf>>();
  for (const run of runs) {
    const task = run.params['task.name'];
    if (run.status !== 'FINISHED' || run.evalAccuracy === undefined || !Number.isFinite(run.evalAccuracy)) continue;
    if (task === undefined || !MAD_TASKS.some((entry) => entry.task === task)) continue;
    const byTask = best.get(run.architecture) ?? new Map<string, BestOf>();
    best.set(run.architecture, byTask);
    const current = byTask.get(task);
    byTask.set(task, {
      accuracy: Math.max(current?.accuracy ?? Number.NEGATIVE_INFINITY, run.evalAccuracy),
      runs: (current?.runs ?? 0) + 1,
    });
  }
  if (best.size === 0) {
    section.omitted = 'No finished runs of a MAD task (task.name mad_…) with an eval/accuracy in this experiment.';
    return section;
  }
  section.description =
    "Test accuracy on MAD's six tasks, per architecture: the best finished run per task (MAD's protocol keeps the best of its learning-rate × weight-decay grid), and the mean over the six tasks where all six were run.";
  const architectures = [...best.keys()].sort((a, b) => a.localeCompare(b));
  const rows = architectures.map((architecture) => {
    const byTask = best.get(architecture) as Map<string, BestOf>;
    const accuracies = MAD_TASKS.map((entry) => byTask.get(entry.task)?.accuracy);
    const complete = accuracies.every((accuracy) => accuracy !== undefined);
    const mean = complete
      ? (accuracies as number[]).reduce((sum, value) => sum + value, 0) / accuracies.length
      : undefined;
    const runCount = [...byTask.values()].reduce((sum, entry) => sum + entry.runs, 0);
    return [architecture, ...accuracies.map(formatAccuracy), formatAccuracy(mean), String(runCount)];
  });
  section.tables.push({
    columns: ['architecture', ...MAD_TASKS.map((entry) => entry.column), 'mean', 'runs'],
    rows,
    numeric: [false, ...MAD_TASKS.map(() => true), true, true],
  });
  const incomplete = rows.filter((row) => row[MAD_TASKS.length + 1] === MISSING).map((row) => row[0]);
  if (incomplete.length > 0) {
    section.notes.push(`No mean for ${incomplete.join(', ')}: not every MAD task has a finished run.`);
  }
  return section;
}
