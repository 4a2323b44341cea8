import { InterleaveError } from '@interleave/core';
import type { CsvTable } from './csv.js';

/** The index of column `name`; an unknown name is an error that lists the columns there are. */
export function columnIndex(table: CsvTable, name: string): number {
  const index = table.header.indexOf(name);
  if (index < 0) {
    const available = table.header.map((column) => `'${column}'`).join(', ');
    throw new InterleaveError(`${table.file}: no column '${name}' (columns: ${available})`);
  }
  return index;
}

/** Column `name` as numbers; a cell that is not a finite number is an error naming file, line and column. */
export function numericColumn(table: CsvTable, name: string): number[] {
  const index = columnIndex(table, name);
  return table.rows.map((row) => {
    const cell = (row.cells[index] as string).trim();
    // Number('') is 0, so empty cells need their own check.
    const value = cell === '' ? Number.NaN : Number(cell);
    if (!Number.isFinite(value)) {
      throw new InterleaveError(
        `${table.file}:${row.line}: column '${name}' holds ${cell === '' ? 'an empty cell' : `'${cell}'`}, not a number`,
      );
    }
    return value;
  });
}

/** Column `name` as strings (trimmed). */
export function textColumn(table: CsvTable, name: string): string[] {
  const index = columnIndex(table, name);
  return table.rows.map((row) => (row.cells[index] as string).trim());
}
