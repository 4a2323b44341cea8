import { beforeAll, describe, expect, it } from 'vitest';
import { buildExperimentReport, type ExperimentReport, type ReportSection } from '../src/index.js';
import { type SyntheticRun, temporaryStore, writeRuns } from './report-fixtures.js';

/**
 * Zoology's attention at two inits and two lengths, as the H200 runs logged them: the init is a
 * model setting (`model.layers.0.pattern.0.init`, unset where the default was used), the learned
 * positions follow the length. One run was stopped after 2 of its 5 steps.
 */
function runs(): SyntheticRun[] {
  const run = (name: string, seqLen: number, init: string | undefined, accuracy: number, steps = 5): SyntheticRun => ({
    name,
    architecture: 'attention+attention',
    status: steps < 5 ? 'KILLED' : 'FINISHED',
    params: {
      'model.d_model': 128,
      'model.max_position_embeddings': seqLen,
      'model.layers.0.pattern.0.block': 'attention',
      ...(init === undefined ? {} : { 'model.layers.0.pattern.0.init': init }),
      'task.name': 'mqar',
      'task.seq_len': seqLen,
      'task.num_kv_pairs': 4,
      'train.steps': 5,
    },
    metrics: { 'train/loss': Array(steps).fill(1), 'eval/accuracy': [accuracy] },
  });
  return [
    run('pytorch-init', 64, undefined, 0.25),
    run('zoology-init', 64, 'zoology', 0.99),
    run('zoology-init-stopped', 64, 'zoology', 0.5, 2),
    run('longer', 128, undefined, 0.97),
  ];
}

function section(report: ExperimentReport, id: string): ReportSection {
  const found = report.sections.find((candidate) => candidate.id === id);
  if (found === undefined) throw new Error(`no section ${id}`);
  return found;
}

describe('reports of runs that differ in a model setting', () => {
  let report: ExperimentReport;
  beforeAll(async () => {
    const uri = temporaryStore();
    await writeRuns(uri, 'variants', runs());
    report = await buildExperimentReport({ uri, experiment: 'variants', now: new Date(0) });
  });

  it('names the setting that tells two models of one architecture apart, never mixing their results', () => {
    const rows = section(report, 'mqar').tables[0]?.rows;
    expect(rows).toEqual([
      ['attention+attention (init=default)', '128', '64', '0.250'],
      ['attention+attention (init=default)', '128', '128', '0.970'],
      ['attention+attention (init=zoology)', '128', '64', '0.990'],
    ]);
  });

  it('shows the steps a stopped run ran, of those configured', () => {
    const table = section(report, 'runs').tables[0];
    const steps = table?.columns.indexOf('steps') as number;
    const byName = new Map(table?.rows.map((row) => [row[0], row[steps]]));
    expect(byName.get('zoology-init-stopped')).toBe('2 of 5');
    expect(byName.get('zoology-init')).toBe('5');
  });
});
