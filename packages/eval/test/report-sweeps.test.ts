import { beforeAll, describe, expect, it } from 'vitest';
import { buildExperimentReport, type ExperimentReport, type ReportSection } from '../src/index.js';
import { type SyntheticRun, temporaryStore, writeRuns } from './report-fixtures.js';

const RATES = [1e-4, 4.6415888e-4, 2.1544347e-3, 1e-2];

/**
 * A Zoology-style learning-rate sweep at two widths: attention works at every rate but the
 * smallest, Mamba only at one, the pattern the learning-rate section must expose. Each run logs
 * its state size as training does; two Mamba d_state values share the d_model 64 runs at 1e-2.
 */
function sweepRuns(): SyntheticRun[] {
  const runs: SyntheticRun[] = [];
  const accuracy = {
    'attention+attention': [0.4, 0.99, 1.0, 0.98],
    'mamba+mamba+mamba+mamba': [0.05, 0.2, 0.93, 0.3],
  } as const;
  for (const [architecture, values] of Object.entries(accuracy)) {
    for (const dModel of [64, 128]) {
      for (const [index, rate] of RATES.entries()) {
        const attention = architecture.startsWith('attention');
        runs.push({
          name: `${architecture.split('+')[0]}-d${dModel}-lr${index}`,
          architecture,
          params: {
            'model.d_model': dModel,
            'task.name': 'mqar',
            'task.seq_len': 64,
            'task.num_kv_pairs': 4,
            'train.optimizer.lr': rate,
            'model.state_bytes_per_sequence': attention ? 2 * 4 * 2 * 64 * dModel : 4 * 4 * 2 * dModel * 19,
            'model.state_grows_with_length': attention ? 'true' : 'false',
          },
          metrics: { 'eval/accuracy': [0.01, (values[index] as number) - 0.01 * (dModel === 64 ? 1 : 0)] },
        });
      }
    }
  }
  // A second Mamba model (d_state 8: a smaller state) at one rate, and a crashed run that must not count.
  runs.push({
    name: 'mamba-d64-dstate8',
    architecture: 'mamba+mamba+mamba+mamba',
    params: {
      'model.d_model': 64,
      'task.seq_len': 64,
      'train.optimizer.lr': 1e-2,
      'model.state_bytes_per_sequence': 4 * 4 * 2 * 64 * 11,
      'model.state_grows_with_length': 'false',
    },
    metrics: { 'eval/accuracy': [0.5] },
  });
  runs.push({
    name: 'mamba-crashed',
    architecture: 'mamba+mamba+mamba+mamba',
    status: 'FAILED',
    params: { 'model.d_model': 64, 'task.seq_len': 64, 'train.optimizer.lr': 1e-2 },
    metrics: { 'eval/accuracy': [0.99] },
  });
  return runs;
}

function section(report: ExperimentReport, id: string): ReportSection {
  const found = report.sections.find((candidate) => candidate.id === id);
  if (found === undefined) throw new Error(`no section ${id}`);
  return found;
}

describe('report sections for sweeps', () => {
  let report: ExperimentReport;
  beforeAll(async () => {
    const uri = temporaryStore();
    await writeRuns(uri, 'sweeps', sweepRuns());
    report = await buildExperimentReport({ uri, experiment: 'sweeps', now: new Date(0) });
  });

  it('tables accuracy at every learning rate, not only the best, and counts the working window', () => {
    const rates = section(report, 'learning-rate');
    expect(rates.omitted).toBeUndefined();
    const table = rates.tables[0]!;
    expect(table.columns).toEqual([
      'architecture',
      'd_model',
      'seq_len',
      '1.0e-4',
      '4.6e-4',
      '2.2e-3',
      '1.0e-2',
      'rates within 0.05 of best',
    ]);
    expect(table.rows).toEqual([
      ['attention+attention', '64', '64', '0.390', '0.980', '0.990', '0.970', '3 of 4'],
      ['attention+attention', '128', '64', '0.400', '0.990', '1.000', '0.980', '3 of 4'],
      // At 1e-2 the d_state 8 model (0.5) does better than d_state 16 (0.29): the best run counts.
      ['mamba+mamba+mamba+mamba', '64', '64', '0.040', '0.190', '0.920', '0.500', '1 of 4'],
      ['mamba+mamba+mamba+mamba', '128', '64', '0.050', '0.200', '0.930', '0.300', '1 of 4'],
    ]);
    const vegaLite = JSON.stringify(rates.plot?.vegaLite);
    expect(vegaLite).toContain('"type":"log"');
    expect(rates.plot?.svg).toContain('peak learning rate (log scale)');
  });

  it('plots accuracy against state size, one point per model, marking growing states', () => {
    const states = section(report, 'state-size');
    expect(states.omitted).toBeUndefined();
    const rows = states.tables[0]!.rows;
    // attention ×2 widths, Mamba ×2 widths, and the d_state 8 Mamba: five models.
    expect(rows).toHaveLength(5);
    expect(rows[0]).toEqual(['attention+attention', '64', '64', '65,536', 'grows with length', '0.990', '4']);
    const dState8 = rows.find((row) => row[3] === (4 * 4 * 2 * 64 * 11).toLocaleString('en-US'));
    expect(dState8).toEqual(['mamba+mamba+mamba+mamba', '64', '64', '22,528', 'constant', '0.500', '1']);
    expect(states.plot?.svg).toContain('state bytes per sequence (float32, log scale)');

    // Every model is drawn, outlined in its architecture's colour: solid when its state is
    // constant, hollow (no fill) when it grows with the sequence.
    const marks = [
      ...(states.plot?.svg ?? '').matchAll(/<path aria-label="([^"]*)"[^>]*aria-roledescription="point"[^>]*>/g),
    ];
    expect(marks).toHaveLength(rows.length);
    const strokeOf = new Map<string, string>();
    for (const [mark, label] of marks) {
      const stroke = /stroke="(#[0-9A-Fa-f]{6})"/.exec(mark)?.[1];
      const fill = /fill="([^"]+)"/.exec(mark)?.[1];
      expect(stroke, mark).toBeDefined();
      expect(fill, mark).toBe(label?.endsWith('state: constant') ? stroke : undefined);
      strokeOf.set(/architecture: ([^;]+);/.exec(label ?? '')?.[1] ?? '', stroke ?? '');
    }
    expect(strokeOf.get('attention+attention')).not.toBe(strokeOf.get('mamba+mamba+mamba+mamba'));
  });
});
