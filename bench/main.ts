import { resolve } from 'node:path';
import { InterleaveError } from '@interleave/core';
import { USAGE } from './options.js';
import { runBench } from './run-bench.js';

/** `pnpm bench [options]`: prints the benchmark tables (markdown) on stdout, progress on stderr. */
const repoRoot = resolve(import.meta.dirname, '..');
const argv = process.argv.slice(2);

if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(`${USAGE}\n`);
} else {
  try {
    await runBench(argv, repoRoot, { out: process.stdout, progress: (line) => process.stderr.write(`${line}\n`) });
    // The fused kernels' worker threads are unref'd, but tfjs-wasm may hold the loop; be explicit.
    process.exit(0);
  } catch (error) {
    const known = error instanceof InterleaveError || (error instanceof TypeError && 'code' in error);
    process.stderr.write(`interleave bench: ${known ? (error as Error).message : ((error as Error).stack ?? error)}\n`);
    process.exit(1);
  }
}
