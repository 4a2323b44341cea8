import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { selectBackend } from '@interleave/core';
import { type BenchEnvironment, describeEnvironment, renderEnvironment } from './environment.js';
import { parseBenchOptions, type SectionName } from './options.js';
import { type BenchTable, renderTable } from './report/table.js';
import type { Section, SectionContext } from './section.js';
import { generateSection } from './sections/generate.js';
import { peerSection } from './sections/peer.js';
import { scanSection } from './sections/scan.js';
import { stepModeSection } from './sections/step-mode.js';
import { swaSection } from './sections/swa.js';
import { trainSection } from './sections/train.js';

const SECTIONS: Record<SectionName, Section> = {
  scan: scanSection,
  train: trainSection,
  swa: swaSection,
  generate: generateSection,
  peer: peerSection,
  'step-mode': stepModeSection,
};

/** What `--json` writes: everything needed to re-render the tables (bench/render.ts). */
export interface BenchResults {
  readonly environment: BenchEnvironment;
  readonly sections: readonly SectionName[];
  readonly long: boolean;
  readonly smoke: boolean;
  readonly tables: readonly BenchTable[];
}

export interface BenchOutput {
  out: { write(text: string): unknown };
  progress: (line: string) => void;
}

export async function runBench(argv: readonly string[], repoRoot: string, output: BenchOutput): Promise<BenchResults> {
  const options = parseBenchOptions(argv, repoRoot);
  // The fused kernels read this when they start their worker threads.
  process.env.INTERLEAVE_KERNEL_THREADS = String(options.threads);
  // TensorFlow (the tensorflow backend) reads these when it starts, here and in every row's child
  // process: its ops get the same threads as the kernels and the peer.
  process.env.TF_NUM_INTRAOP_THREADS = String(options.threads);
  process.env.TF_NUM_INTEROP_THREADS = '1';
  const backend = await selectBackend(options.backend, '--backend');
  const environment = describeEnvironment(backend, options.threads, argv);
  output.out.write(`${renderEnvironment(environment)}\n\n`);
  const context: SectionContext = { options, backend, progress: output.progress, shared: {} };
  const tables: BenchTable[] = [];
  for (const name of options.sections) {
    const started = performance.now();
    for (const table of await SECTIONS[name].run(context)) {
      tables.push(table);
      output.out.write(`${renderTable(table)}\n\n`);
    }
    output.progress(`${name}: done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  }
  const results: BenchResults = {
    environment,
    sections: options.sections,
    long: options.long,
    smoke: options.smoke,
    tables,
  };
  if (options.json !== undefined) {
    mkdirSync(dirname(options.json), { recursive: true });
    writeFileSync(options.json, `${JSON.stringify(results, null, 2)}\n`);
    output.progress(`results written to ${options.json}`);
  }
  return results;
}
