import { readFile } from 'node:fs/promises';
import { InterleaveError } from '@interleave/core';
import type { ChinchillaPoint } from './chinchilla.js';
import type { ComputePoint } from './compute-law.js';
import { type CsvTable, parseCsv } from './csv.js';
import { numericColumn, textColumn } from './csv-columns.js';

/** Which columns hold N, the loss, and either D or the training FLOPs C (then D = C / 6N). */
export interface ChinchillaColumns {
  n: string;
  loss: string;
  d?: string;
  flops?: string;
}

export interface ComputeColumns {
  compute: string;
  loss: string;
  /** Fit one law per distinct value of this column; without it every row is one group. */
  group?: string;
}

/** The group name used when a compute CSV has no group column. */
export const ALL_POINTS_GROUP = 'all';

export async function readCsvFile(file: string): Promise<CsvTable> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InterleaveError(`CSV file not found: ${file}`);
    throw new InterleaveError(`cannot read ${file}: ${code ?? String(error)}`);
  }
  return parseCsv(text, file);
}

/** (N, D, loss) points of a CSV, D read directly or derived as FLOPs / (6·N) as in Chinchilla. */
export async function readChinchillaCsv(file: string, columns: ChinchillaColumns): Promise<ChinchillaPoint[]> {
  if ((columns.d === undefined) === (columns.flops === undefined)) {
    throw new InterleaveError('give the tokens column or the training-FLOPs column (exactly one of them)');
  }
  const table = await readCsvFile(file);
  const n = positiveColumn(table, columns.n);
  const loss = positiveColumn(table, columns.loss);
  const d =
    columns.d !== undefined
      ? positiveColumn(table, columns.d)
      : positiveColumn(table, columns.flops as string).map((flops, row) => flops / (6 * (n[row] as number)));
  return n.map((parameters, row) => ({ n: parameters, d: d[row] as number, loss: loss[row] as number }));
}

/** (compute, loss) points of a CSV by group, groups in order of first appearance. */
export async function readComputeCsv(file: string, columns: ComputeColumns): Promise<Map<string, ComputePoint[]>> {
  const table = await readCsvFile(file);
  const compute = positiveColumn(table, columns.compute);
  const loss = positiveColumn(table, columns.loss);
  const groups = columns.group !== undefined ? textColumn(table, columns.group) : undefined;
  const grouped = new Map<string, ComputePoint[]>();
  compute.forEach((value, row) => {
    const name = groups?.[row] ?? ALL_POINTS_GROUP;
    const points = grouped.get(name) ?? [];
    points.push({ compute: value, loss: loss[row] as number });
    grouped.set(name, points);
  });
  return grouped;
}

/** The points without the `count` highest-loss ones (ties: the later row goes first), order kept. */
export function dropHighestLoss<T extends { loss: number }>(points: readonly T[], count: number): T[] {
  if (count <= 0) return [...points];
  const dropped = new Set(
    points
      .map((point, index) => ({ loss: point.loss, index }))
      .sort((p, q) => q.loss - p.loss || q.index - p.index)
      .slice(0, count)
      .map((entry) => entry.index),
  );
  return points.filter((_, index) => !dropped.has(index));
}

/** Scaling laws take logs of every value, so zero and negative cells are errors too. */
function positiveColumn(table: CsvTable, name: string): number[] {
  const values = numericColumn(table, name);
  values.forEach((value, row) => {
    if (value <= 0) {
      throw new InterleaveError(
        `${table.file}:${table.rows[row]?.line}: column '${name}' holds ${value}, but scaling fits need positive values`,
      );
    }
  });
  return values;
}
