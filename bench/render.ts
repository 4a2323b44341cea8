import { readFileSync } from 'node:fs';
import { InterleaveError } from '@interleave/core';
import { renderEnvironment } from './environment.js';
import { renderTable } from './report/table.js';
import type { BenchResults } from './run-bench.js';

/**
 * `npx tsx bench/render.ts results.json [more.json ...]`: the markdown of one or more
 * `pnpm bench --json` runs — machine, versions, command, then every table — for
 * docs/benchmarks.md, so the figures there can be regenerated rather than retyped.
 */
export function renderResults(results: BenchResults): string {
  const header = renderEnvironment(results.environment)
    .split('\n')
    .map((line) => `- ${line}`)
    .join('\n');
  return [header, '', ...results.tables.map(renderTable)].join('\n\n').replace(/\n{3,}/g, '\n\n');
}

const files = process.argv.slice(2);
if (import.meta.url === `file://${process.argv[1]}`) {
  if (files.length === 0) {
    process.stderr.write('usage: npx tsx bench/render.ts results.json [more.json ...]\n');
    process.exit(1);
  }
  try {
    for (const file of files) {
      let results: BenchResults;
      try {
        results = JSON.parse(readFileSync(file, 'utf8')) as BenchResults;
      } catch (error) {
        throw new InterleaveError(`${file}: not a pnpm bench --json file (${(error as Error).message})`);
      }
      process.stdout.write(`${renderResults(results)}\n\n`);
    }
  } catch (error) {
    process.stderr.write(`interleave bench render: ${(error as Error).message}\n`);
    process.exit(1);
  }
}
