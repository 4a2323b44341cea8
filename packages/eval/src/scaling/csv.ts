import { InterleaveError } from '@interleave/core';

/** A parsed CSV file: the header's column names and each record with the line it starts on. */
export interface CsvTable {
  /** The file's name as the user gave it, for error messages. */
  file: string;
  header: string[];
  rows: CsvRow[];
}

export interface CsvRow {
  /** 1-based line of the file on which this record starts. */
  line: number;
  cells: string[];
}

/**
 * Parses RFC 4180 CSV: comma-separated, records ended by LF or CRLF, fields optionally in double
 * quotes (which may then hold commas, newlines and "" for a quote). The first record is the
 * header. Blank lines are skipped; a record with the wrong number of fields is an error naming
 * the file and line, since silently padding it would shift values between columns.
 */
export function parseCsv(text: string, file: string): CsvTable {
  const records = splitRecords(text.startsWith('\uFEFF') ? text.slice(1) : text, file);
  const first = records.shift();
  if (first === undefined) throw new InterleaveError(`${file}: the CSV file is empty (expected a header line)`);
  const header = first.cells.map((name) => name.trim());
  for (const row of records) {
    if (row.cells.length !== header.length) {
      throw new InterleaveError(
        `${file}:${row.line}: expected ${header.length} fields as in the header, found ${row.cells.length}`,
      );
    }
  }
  return { file, header, rows: records };
}

function splitRecords(text: string, file: string): CsvRow[] {
  const rows: CsvRow[] = [];
  let cells: string[] = [];
  let field = '';
  let line = 1;
  let recordLine = 1;
  let quoted = false;
  // Whether the current record has any content: a blank line is no record, but `""` is.
  let started = false;
  let i = 0;
  const endRecord = () => {
    if (started) rows.push({ line: recordLine, cells: [...cells, field] });
    cells = [];
    field = '';
    started = false;
  };
  while (i < text.length) {
    const char = text[i] as string;
    if (quoted) {
      if (char === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        const next = text[i];
        if (next !== undefined && next !== ',' && next !== '\n' && next !== '\r') {
          throw new InterleaveError(`${file}:${line}: unexpected '${next}' after a closing quote`);
        }
        continue;
      }
      if (char === '\n') line++;
      field += char;
      i++;
      continue;
    }
    if (!started) recordLine = line;
    if (char === '\r' && text[i + 1] === '\n') {
      i++;
      continue;
    }
    if (char === '\n' || char === '\r') {
      endRecord();
      line++;
      i++;
      continue;
    }
    started = true;
    if (char === ',') {
      cells.push(field);
      field = '';
    } else if (char === '"' && field === '') {
      quoted = true;
    } else {
      field += char;
    }
    i++;
  }
  if (quoted) throw new InterleaveError(`${file}:${recordLine}: a quoted field is never closed`);
  endRecord();
  return rows;
}
