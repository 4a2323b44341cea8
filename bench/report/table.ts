/** How a column's values are printed; the JSON output keeps the raw numbers. */
export type ColumnKind = 'text' | 'int' | 'ms' | 'ratio' | 'mib' | 'rate';

export interface Column {
  readonly key: string;
  /** Says what the number means, ratios included: e.g. "fused speed-up × (ops ÷ fused)". */
  readonly header: string;
  readonly kind: ColumnKind;
}

/** A cell is a number, a text, or null for "not measured" (the notes say why). */
export type Cell = number | string | null;
export type Row = Record<string, Cell>;

/** One benchmark table: what `pnpm bench` prints and what `--json` writes. */
export interface BenchTable {
  readonly id: string;
  readonly title: string;
  readonly columns: readonly Column[];
  readonly rows: Row[];
  /** Shapes, baselines and caveats, printed under the table. */
  readonly notes: string[];
}

const MIB = 1024 * 1024;

export function formatCell(value: Cell | undefined, kind: ColumnKind): string {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'string') return value;
  if (!Number.isFinite(value)) return String(value);
  switch (kind) {
    case 'int':
      return Math.round(value).toLocaleString('en-US');
    case 'ms':
      return value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(3);
    case 'ratio':
      return `${value.toFixed(2)}×`;
    case 'mib':
      return value >= 10 * MIB ? (value / MIB).toFixed(0) : (value / MIB).toFixed(1);
    case 'rate':
      return value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(1);
    default:
      return String(value);
  }
}

/** A GitHub-flavoured markdown table, readable in a terminal and pasteable into docs as it is. */
export function renderTable(table: BenchTable): string {
  const header = table.columns.map((column) => column.header);
  const body = table.rows.map((row) => table.columns.map((column) => formatCell(row[column.key], column.kind)));
  const widths = header.map((title, index) =>
    Math.max(title.length, ...body.map((cells) => (cells[index] ?? '').length)),
  );
  const line = (cells: readonly string[]) =>
    `| ${cells.map((cell, index) => (table.columns[index]?.kind === 'text' ? cell.padEnd(widths[index] ?? 0) : cell.padStart(widths[index] ?? 0))).join(' | ')} |`;
  const rule = `|${table.columns.map((column, index) => (column.kind === 'text' ? ':' : '-') + '-'.repeat(widths[index] ?? 0) + (column.kind === 'text' ? '-' : ':')).join('|')}|`;
  const notes = table.notes.map((note) => `- ${note}`);
  return [`### ${table.title}`, '', line(header), rule, ...body.map(line), '', ...notes].join('\n');
}
