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

describe('runs of one model from different config files', () => {
  it('are told apart by the part of the config name they do not share, so the best run is of one protocol', async () => {
    const uri = temporaryStore();
    const run = (name: string, config: string, at2048: number): SyntheticRun => ({
      name,
      architecture: 'mamba+mamba',
      params: { name: config, 'model.d_model': 64, 'task.name': 'induction_heads', 'task.seq_len': 256 },
      metrics: { 'eval/induction/len_256/accuracy': [1], 'eval/induction/len_2048/accuracy': [at2048] },
    });
    await writeRuns(uri, 'protocols', [
      run('plain', 'mamba-induction-mamba', 0.55),
      run('curriculum', 'mamba-induction-mamba-short-gaps', 1),
      run('paper', 'mamba-induction-mamba-paper-training', 0.8),
    ]);
    const report = await buildExperimentReport({ uri, experiment: 'protocols', now: new Date(0) });
    const rows = section(report, 'induction').tables[0]?.rows.map((row) => row.slice(0, 2));
    expect(rows?.sort()).toEqual([
      ['mamba+mamba (config=mamba)', 'plain'],
      ['mamba+mamba (config=mamba-paper-training)', 'paper'],
      ['mamba+mamba (config=mamba-short-gaps)', 'curriculum'],
    ]);
  });
});
