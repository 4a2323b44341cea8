import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, normalize, relative } from 'node:path';
import { InterleaveError, SeededRandom } from '@interleave/core';
import { stringify } from 'yaml';
import { experimentConfigFromText, loadExperimentConfig } from '../../src/config/experiment-config.js';
import { prepareLoadedRun } from '../../src/run/prepare-run.js';
import { planSweep } from '../../src/sweep/plan.js';
import { type Mutant, mutateConfig } from './config-mutator.js';

/** How one mutant ended. */
export type Outcome =
  | { kind: 'loaded' }
  | { kind: 'rejected'; message: string }
  /** Not the promised one clear line: a bug the fuzzer found. */
  | { kind: 'unclear'; message: string; why: string };

export interface FuzzFigures {
  mutants: number;
  loaded: number;
  rejected: number;
  /** Errors that were not InterleaveErrors: what the CLI prints with "internal error" and a stack hint. */
  stackTraces: number;
  /** Inputs whose load took longer than the per-input limit. */
  hangs: number;
  /** The mutants that broke a promise, for the failure report. */
  failures: Array<{ source: string; index: number; edits: readonly string[]; problem: string }>;
  slowest: { source: string; index: number; milliseconds: number };
}

/** A source the fuzzer mutates: a config file (loaded by path, bases and plugins beside it), or config data. */
interface FuzzSource {
  readonly name: string;
  readonly text: string;
  /** A file with a `sweep:` section, loaded as `interleave sweep` does. */
  readonly isSweep?: boolean;
  /** Loads the mutated text; the label its errors must start with. */
  load(text: string): Promise<{ labels: (label: string) => boolean; run: () => Promise<unknown> }>;
}

/** Every shipped config, copied to a scratch folder so relative `extends` and plugin paths still resolve. */
export function shippedConfigSources(configsDir: string): { sources: FuzzSource[]; scratch: string } {
  // Inside the workspace (under its ignored node_modules), so a plugin's imports resolve as in place.
  const cache = join(configsDir, '..', 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  const scratch = join(mkdtempSync(join(cache, 'interleave-fuzz-')), 'configs');
  cpSync(configsDir, scratch, { recursive: true });
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.isDirectory()) walk(join(dir, entry.name));
      else if (entry.name.endsWith('.yaml')) files.push(join(dir, entry.name));
    }
  };
  walk(scratch);
  files.sort();
  const sources = files.map((file): FuzzSource => {
    const name = relative(scratch, file);
    const text = readFileSync(file, 'utf8');
    // A sweep is a file with a top-level `sweep:` section (configs/sweeps/, configs/repro/…).
    const isSweep = /^sweep:/m.test(text);
    const mutantFile = join(file, '..', `fuzz-${basename(file)}`);
    return {
      name,
      isSweep,
      text,
      async load(text) {
        writeFileSync(mutantFile, text);
        const run = isSweep
          ? () => planSweep(mutantFile)
          : async () => prepareLoadedRun(await loadExperimentConfig(mutantFile));
        // A problem may sit in a base file the mutant extends (e.g. the map a dropped key belonged to).
        return { labels: (label) => label === mutantFile || label.startsWith(scratch), run };
      },
    };
  });
  return { sources, scratch: join(scratch, '..') };
}

/** The shipped files that another shipped config names in `extends:` (relative to itself). */
function extendedFiles(files: readonly FuzzSource[]): Set<string> {
  const bases = new Set<string>();
  for (const file of files) {
    const base = /^extends:\s*['"]?([^'"#\n]+?)['"]?\s*(?:#.*)?$/m.exec(file.text)?.[1];
    if (base !== undefined) bases.add(normalize(join(dirname(file.name), base)));
  }
  return bases;
}

/** Each config's resolved data as a trial carries it: loaded with `experimentConfigFromText`, no file behind it. */
export async function configDataSources(files: readonly FuzzSource[]): Promise<FuzzSource[]> {
  const sources: FuzzSource[] = [];
  const bases = extendedFiles(files);
  for (const file of files) {
    // Sweeps carry trials, not one config; a base is a fragment other configs extend; the
    // language-model configs read a corpus that scripts/fetch-shakespeare.sh downloads (their
    // mutants are still loaded from their files above, where a missing corpus is one line too).
    if (file.isSweep || bases.has(file.name) || file.name.startsWith('lm/')) continue;
    const { run } = await file.load(file.text);
    const prepared = (await run()) as { loaded: { resolved: Record<string, unknown> } };
    const label = `trial config of ${file.name}`;
    sources.push({
      name: label,
      text: stringify(prepared.loaded.resolved),
      async load(text) {
        return {
          labels: (shown) => shown === label,
          run: async () => prepareLoadedRun(experimentConfigFromText(text, label)),
        };
      },
    });
  }
  return sources;
}

const ONE_LOCATED_LINE = /^(?<label>.+?):(?<line>\d+):(?<column>\d+): (?<path>.+?): \S/;

/**
 * Runs `perSource` mutants of every source through the loader and full validation (plugins,
 * blocks, tasks, evaluations; sweeps expanded), and classifies each outcome. A rejection must
 * be an InterleaveError of one line, `label:line:col: key.path: problem`; the one message
 * without a position is the empty file's, which has no line to point at.
 */
export async function fuzzConfigs(
  sources: readonly FuzzSource[],
  options: { seed: number; perSource: number; hangMilliseconds: number },
): Promise<FuzzFigures> {
  const figures: FuzzFigures = {
    mutants: 0,
    loaded: 0,
    rejected: 0,
    stackTraces: 0,
    hangs: 0,
    failures: [],
    slowest: { source: '', index: -1, milliseconds: 0 },
  };
  for (const source of sources) {
    const rng = new SeededRandom(options.seed, source.name);
    for (let index = 0; index < options.perSource; index++) {
      const mutant = mutateConfig(source.text, rng);
      const started = performance.now();
      const outcome = await runMutant(source, mutant);
      const milliseconds = performance.now() - started;
      figures.mutants++;
      if (milliseconds > figures.slowest.milliseconds) figures.slowest = { source: source.name, index, milliseconds };
      const fail = (problem: string) =>
        figures.failures.push({ source: source.name, index, edits: mutant.edits, problem });
      if (milliseconds > options.hangMilliseconds) {
        figures.hangs++;
        fail(`took ${Math.round(milliseconds)} ms`);
      }
      if (outcome.kind === 'loaded') figures.loaded++;
      else if (outcome.kind === 'rejected') figures.rejected++;
      else {
        if (outcome.why === 'not an InterleaveError') figures.stackTraces++;
        fail(`${outcome.why}: ${outcome.message.slice(0, 300)}`);
      }
    }
  }
  return figures;
}

async function runMutant(source: FuzzSource, mutant: Mutant): Promise<Outcome> {
  const { labels, run } = await source.load(mutant.text);
  try {
    await run();
    return { kind: 'loaded' };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (!(error instanceof InterleaveError)) {
      return { kind: 'unclear', message: `${(error as Error)?.name}: ${message}`, why: 'not an InterleaveError' };
    }
    if (message.includes('\n') || message.includes('\r'))
      return { kind: 'unclear', message, why: 'more than one line' };
    if (message.length > 2000) return { kind: 'unclear', message, why: 'a line longer than 2000 characters' };
    const empty = /^(?<label>.+): \(top level\): the file is empty; a config is a YAML map of keys$/.exec(message);
    if (empty && labels(empty.groups?.label ?? '')) return { kind: 'rejected', message };
    const located = ONE_LOCATED_LINE.exec(message);
    if (!labels(located?.groups?.label ?? '')) return { kind: 'unclear', message, why: 'no label:line:col: key.path' };
    return { kind: 'rejected', message };
  }
}
