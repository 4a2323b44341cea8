import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BACKEND_NAMES, type BackendRequest, InterleaveError } from '@interleave/core';

export const SECTION_NAMES = ['scan', 'train', 'swa', 'generate', 'peer', 'step-mode'] as const;
export type SectionName = (typeof SECTION_NAMES)[number];

/** What `pnpm bench` runs when no --only is given; the peer joins with --peer. */
const DEFAULT_SECTIONS: readonly SectionName[] = ['scan', 'train', 'swa', 'generate'];

export interface BenchOptions {
  readonly sections: readonly SectionName[];
  /** The backend every section runs on: the first of `backends`. */
  readonly backend: BackendRequest;
  /** `--backend a,b`: the peer table also trains the reference hybrid on b (same run, threads, batch). */
  readonly backends: readonly BackendRequest[];
  /** Adds the 256k-token generation marks (minutes per block). */
  readonly long: boolean;
  /** The smallest shapes of every section: proves the harness runs; its numbers mean nothing. */
  readonly smoke: boolean;
  /** Threads for the fused scan kernels and for the PyTorch peer. */
  readonly threads: number;
  readonly json: string | undefined;
  /** The reference hybrid's config file. */
  readonly config: string;
  /** The Python interpreter for the peer; undefined = the repo's .venv-torch, else python3. */
  readonly python: string | undefined;
}

export const USAGE = `usage: pnpm bench [options]
  --only <section>    run only these sections (repeatable or comma-separated): ${SECTION_NAMES.join(', ')}
  --peer              also run the PyTorch peer of the reference hybrid (needs torch)
  --long              add the 256k-token generation marks (several minutes per block)
  --backend <name>    tfjs backend: ${BACKEND_NAMES.filter((name) => name !== 'auto').join(', ')} (default wasm);
                      a list (wasm,tensorflow) runs every section on the first and adds the
                      others' reference-hybrid rows to the peer table
  --threads <n>       threads for the fused scan kernels and the peer (default: INTERLEAVE_KERNEL_THREADS, else every core)
  --json <file>       also write every result, machine-readable
  --config <file>     the reference hybrid (default configs/bench-hybrid.yaml)
  --python <path>     interpreter for the peer (default .venv-torch/bin/python, else python3)
  --smoke             the smallest shapes of every section: checks the harness, numbers mean nothing`;

export function parseBenchOptions(argv: readonly string[], repoRoot: string): BenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      only: { type: 'string', multiple: true },
      peer: { type: 'boolean', default: false },
      long: { type: 'boolean', default: false },
      smoke: { type: 'boolean', default: false },
      backend: { type: 'string', default: 'wasm' },
      threads: { type: 'string' },
      json: { type: 'string' },
      config: { type: 'string' },
      python: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const backends = parseBackends(values.backend);
  return {
    sections: chooseSections(values.only, values.peer),
    backend: backends[0] as BackendRequest,
    backends,
    long: values.long,
    smoke: values.smoke,
    threads: parseThreads(values.threads),
    json: values.json === undefined ? undefined : resolve(values.json),
    config: resolve(repoRoot, values.config ?? 'configs/bench-hybrid.yaml'),
    python: values.python,
  };
}

function parseBackends(text: string): BackendRequest[] {
  const names = [...new Set(text.split(',').map((name) => name.trim()))];
  for (const name of names) {
    if (!(BACKEND_NAMES as readonly string[]).includes(name)) {
      throw new InterleaveError(`--backend '${name}' is not one of ${BACKEND_NAMES.join(', ')}`);
    }
  }
  return names as BackendRequest[];
}

function chooseSections(only: readonly string[] | undefined, peer: boolean): SectionName[] {
  if (only === undefined) return peer ? [...DEFAULT_SECTIONS, 'peer'] : [...DEFAULT_SECTIONS];
  const names = only.flatMap((value) => value.split(',')).map((name) => name.trim());
  for (const name of names) {
    if (!(SECTION_NAMES as readonly string[]).includes(name)) {
      throw new InterleaveError(`--only '${name}' is not a section (sections: ${SECTION_NAMES.join(', ')})`);
    }
  }
  const chosen = new Set(names as SectionName[]);
  if (peer) chosen.add('peer');
  // Printed in a fixed order, whatever order the flags came in.
  return SECTION_NAMES.filter((name) => chosen.has(name));
}

function parseThreads(text: string | undefined): number {
  const source = text ?? process.env.INTERLEAVE_KERNEL_THREADS;
  if (source === undefined || source === '') return availableParallelism();
  const count = Number(source);
  if (!Number.isInteger(count) || count < 1) {
    throw new InterleaveError(`--threads must be a positive integer, got '${source}'`);
  }
  return count;
}
