import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCsv } from '../src/scaling/csv.js';
import { columnIndex, numericColumn, textColumn } from '../src/scaling/csv-columns.js';
import { dropHighestLoss, readChinchillaCsv, readComputeCsv } from '../src/scaling/csv-points.js';

function csvFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'interleave-csv-')), 'points.csv');
  writeFileSync(file, text);
  return file;
}

describe('parseCsv', () => {
  it('reads quoted fields with commas, doubled quotes and line breaks, and CRLF records', () => {
    const text = '\uFEFFname,"Model Size",note\r\nplain,1e9,"a, b"\r\n"quoted ""x""",2,"two\nlines"\r\n\r\nlast,3,\r\n';
    const table = parseCsv(text, 'points.csv');
    expect(table.header).toEqual(['name', 'Model Size', 'note']);
    expect(table.rows).toEqual([
      { line: 2, cells: ['plain', '1e9', 'a, b'] },
      { line: 3, cells: ['quoted "x"', '2', 'two\nlines'] },
      { line: 6, cells: ['last', '3', ''] },
    ]);
  });

  it('reads a file without a final newline and keeps empty quoted fields', () => {
    expect(parseCsv('a,b\n"",x', 'f.csv').rows).toEqual([{ line: 2, cells: ['', 'x'] }]);
  });

  it('names the file and line of malformed records', () => {
    expect(() => parseCsv('a,b\n1,2\n3\n', 'f.csv')).toThrow('f.csv:3: expected 2 fields as in the header, found 1');
    expect(() => parseCsv('a,b\n1,"2\n', 'f.csv')).toThrow('f.csv:2: a quoted field is never closed');
    expect(() => parseCsv('a,b\n1,"2"x\n', 'f.csv')).toThrow(`f.csv:2: unexpected 'x' after a closing quote`);
    expect(() => parseCsv('\n\n', 'f.csv')).toThrow('f.csv: the CSV file is empty');
  });
});

describe('CSV columns', () => {
  const table = parseCsv('size,loss,arch\n10,2.5,mamba\n20,,swa\n30,abc,swa\n', 'runs.csv');

  it('lists the available columns for an unknown one', () => {
    expect(columnIndex(table, 'loss')).toBe(1);
    expect(() => columnIndex(table, 'Loss')).toThrow(`runs.csv: no column 'Loss' (columns: 'size', 'loss', 'arch')`);
  });

  it('names file, line and column of a cell that is not a number', () => {
    expect(numericColumn(table, 'size')).toEqual([10, 20, 30]);
    expect(() => numericColumn(table, 'loss')).toThrow(`runs.csv:3: column 'loss' holds an empty cell, not a number`);
    expect(textColumn(table, 'arch')).toEqual(['mamba', 'swa', 'swa']);
  });
});

describe('scaling points from CSV', () => {
  it('derives D = FLOP / (6N) or reads D directly', async () => {
    const file = csvFile('N,FLOP,D,loss\n1e8,6e17,1e9,3.0\n2e8,2.4e18,2e9,2.8\n');
    expect(await readChinchillaCsv(file, { n: 'N', flops: 'FLOP', loss: 'loss' })).toEqual([
      { n: 1e8, d: 1e9, loss: 3 },
      { n: 2e8, d: 2e9, loss: 2.8 },
    ]);
    expect(await readChinchillaCsv(file, { n: 'N', d: 'D', loss: 'loss' })).toHaveLength(2);
    await expect(readChinchillaCsv(file, { n: 'N', loss: 'loss' })).rejects.toThrow('exactly one of them');
  });

  it('rejects non-positive values with the line, and missing files by name', async () => {
    const file = csvFile('N,D,loss\n1e8,1e9,3.0\n2e8,0,2.8\n');
    await expect(readChinchillaCsv(file, { n: 'N', d: 'D', loss: 'loss' })).rejects.toThrow(
      `${file}:3: column 'D' holds 0, but scaling fits need positive values`,
    );
    await expect(readChinchillaCsv('nosuch.csv', { n: 'N', d: 'D', loss: 'loss' })).rejects.toThrow(
      'CSV file not found: nosuch.csv',
    );
  });

  it('groups compute points by a column, in order of first appearance', async () => {
    const file = csvFile('arch,C,loss\nswa,1e15,3\nmamba,1e15,2.9\nswa,1e16,2.5\n');
    const groups = await readComputeCsv(file, { compute: 'C', loss: 'loss', group: 'arch' });
    expect([...groups.keys()]).toEqual(['swa', 'mamba']);
    expect(groups.get('swa')).toEqual([
      { compute: 1e15, loss: 3 },
      { compute: 1e16, loss: 2.5 },
    ]);
    expect([...(await readComputeCsv(file, { compute: 'C', loss: 'loss' })).keys()]).toEqual(['all']);
  });

  it('drops the highest-loss points and keeps the order of the rest', () => {
    const points = [{ loss: 3 }, { loss: 5 }, { loss: 1 }, { loss: 4 }];
    expect(dropHighestLoss(points, 2)).toEqual([{ loss: 3 }, { loss: 1 }]);
    expect(dropHighestLoss(points, 0)).toEqual(points);
    expect(dropHighestLoss(points, 9)).toEqual([]);
  });
});
