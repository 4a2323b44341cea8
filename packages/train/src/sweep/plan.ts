import { execFileSync } from 'node:child_process';
import { dirname, isAbsolute, resolve } from 'node:path';
import {
  ConfigError,
  type ConfigFiles,
  configHash,
  InterleaveError,
  parseOverride,
  readConfigFiles,
} from '@interleave/core';
import { stringify } from 'yaml';
import { type LoadedExperiment, resolveExperimentConfig } from '../config/experiment-config.js';
import { prepareLoadedRun } from '../run/prepare-run.js';
import { expandSweep, type SweepPoint } from './expand.js';
import { describeParams } from './format.js';
import type { SweepConfig } from './sweep-schema.js';

/** Where a trial logs: the MLflow store (an absolute path or a URI) and the experiment. */
export interface TrackingTarget {
  readonly uri: string;
  readonly experiment: string;
}

/** One trial, complete enough that a worker on another machine can train it from this alone. */
export interface TrialSpec {
  readonly sweepId: string;
  readonly sweepName: string;
  /** 1-based position in the sweep; `total` trials in all. */
  readonly index: number;
  readonly total: number;
  /** The hash of the trial's resolved config: the same config is the same trial, in any sweep. */
  readonly trialId: string;
  /** The sweep's parameter values for this trial, in the sweep's order. */
  readonly params: Readonly<Record<string, unknown>>;
  /**
   * The trial's resolved config (no `extends`, no `sweep`) as YAML text: exactly what is trained.
   * Text, because trials travel as JSON (a queue's job, a trial process's IPC message), which
   * cannot carry every YAML value (`.inf`); a worker reads it with `experimentConfigFromText`.
   */
  readonly config: string;
  readonly tracking: TrackingTarget;
  readonly runName: string;
  /** The sweep file (absolute path) and its git commit, recorded on the trial's run. */
  readonly sourceTags: Readonly<Record<string, string>>;
}

export interface SweepPlan {
  readonly file: string;
  readonly name: string;
  /** The hash of the sweep file's resolved config (with `--set` overrides): names the sweep's parent run. */
  readonly sweepId: string;
  readonly sweep: SweepConfig;
  /** The sweep file's resolved config, as the parent run logs it. */
  readonly resolved: Record<string, unknown>;
  readonly parameterKeys: readonly string[];
  /** Where the parent run goes: the sweep file's own tracking settings. */
  readonly tracking: TrackingTarget;
  readonly trials: readonly TrialSpec[];
  /** Points that gave a config some earlier point already gave (e.g. repeated random draws). */
  readonly duplicates: number;
}

/**
 * Expands the sweep in `file` into trials and validates every one of them exactly as
 * `interleave train` would (config, blocks, task, plugins) before anything runs: the first
 * invalid trial throws one ConfigError that names the trial, the key and where the offending
 * value is written in the sweep file. The file (and its bases) is read once; each trial is
 * that data with the trial's values set.
 */
export async function planSweep(file: string, overrides: readonly string[] = []): Promise<SweepPlan> {
  const files = await readConfigFiles(file);
  const loaded = resolveExperimentConfig(files, overrides);
  const sweep = loaded.config.sweep;
  if (sweep === undefined || sweep === null) {
    throw new ConfigError(
      `no 'sweep:' section; train a single config with: interleave train ${file}`,
      ['sweep'],
      loaded.locate(['sweep']),
    );
  }
  const keys = Object.keys(sweep.parameters);
  for (const key of keys) checkParameterPath(loaded, key);
  const points = expandSweep(sweep);
  const pinned = [...overrides, 'sweep=null', ...absolutePathOverrides(loaded)];
  const sweepId = configHash(loaded.resolved);
  const sourceTags = sourceTagsOf(file);

  const trials: TrialSpec[] = [];
  const seen = new Set<string>();
  for (const point of points) {
    const trialLoaded = await validateTrial(files, loaded, pinned, point, points.length);
    const trialId = configHash(trialLoaded.resolved);
    if (seen.has(trialId)) continue;
    seen.add(trialId);
    const { config } = trialLoaded;
    trials.push({
      sweepId,
      sweepName: loaded.config.name,
      index: trials.length + 1,
      total: 0,
      trialId,
      params: point.values,
      config: stringify(trialLoaded.resolved),
      tracking: { uri: config.tracking.uri, experiment: config.tracking.experiment },
      runName: `${config.tracking.run_name ?? config.name}-${trials.length + 1}`,
      sourceTags,
    });
  }
  const total = trials.length;
  return {
    file,
    name: loaded.config.name,
    sweepId,
    sweep,
    resolved: loaded.resolved,
    parameterKeys: keys,
    tracking: { uri: absoluteTrackingUri(loaded.config.tracking.uri), experiment: loaded.config.tracking.experiment },
    trials: trials.map((trial) => ({ ...trial, total })),
    duplicates: points.length - total,
  };
}

function parameterOverride(key: string, value: unknown): string {
  // JSON is YAML's flow syntax, so every value read from the sweep file round-trips.
  return `${key}=${JSON.stringify(value)}`;
}

function checkParameterPath(loaded: LoadedExperiment, key: string): void {
  try {
    parseOverride(`${key}=null`);
  } catch (error) {
    const reason = error instanceof Error ? error.message.replace(/^invalid override '[^']*': /, '') : String(error);
    throw new ConfigError(
      `invalid parameter path: ${reason}`,
      ['sweep', 'parameters', key],
      loaded.locate(['sweep', 'parameters', key], 'key'),
    );
  }
}

async function validateTrial(
  files: ConfigFiles,
  sweepLoaded: LoadedExperiment,
  pinned: readonly string[],
  point: SweepPoint,
  count: number,
): Promise<LoadedExperiment> {
  const byOverride = new Map<string, string>();
  const parameterOverrides = Object.entries(point.values).map(([key, value]) => {
    const text = parameterOverride(key, value);
    byOverride.set(`--set ${text}`, key);
    return text;
  });
  try {
    return (await prepareLoadedRun(resolveExperimentConfig(files, [...pinned, ...parameterOverrides]))).loaded;
  } catch (error) {
    const trial = `sweep trial ${point.index} of ${count}: ${describeParams(point.values)}`;
    if (!(error instanceof ConfigError)) {
      if (error instanceof InterleaveError) throw new InterleaveError(`${error.message} (${trial})`);
      throw error;
    }
    const key = byOverride.get(error.location.file);
    if (key === undefined) throw new ConfigError(`${error.problem} (${trial})`, error.keyPath, error.location);
    // The value came from the sweep: point at it in the sweep file rather than at a `--set`.
    const position = point.listPositions[key];
    const valuePath = ['sweep', 'parameters', key, ...(position === undefined ? [] : [position])];
    throw new ConfigError(`${error.problem} (${trial})`, error.keyPath, sweepLoaded.locate(valuePath));
  }
}

/**
 * Relative paths in a trial would mean something else to a worker in another folder or on
 * another machine, so the tracking store and plugin paths are made absolute, resolved the way
 * `interleave train` resolves them here (the store from the working directory, plugins from
 * the file that names them).
 */
function absolutePathOverrides(loaded: LoadedExperiment): string[] {
  const overrides: string[] = [];
  const uri = loaded.config.tracking.uri;
  if (absoluteTrackingUri(uri) !== uri) overrides.push(parameterOverride('tracking.uri', absoluteTrackingUri(uri)));
  const plugins = loaded.config.plugins.map((specifier, index) => {
    if (!specifier.startsWith('.')) return specifier;
    const declaredIn = loaded.locate(['plugins', index]).file;
    const base = declaredIn.startsWith('--set') ? process.cwd() : dirname(resolve(declaredIn));
    return resolve(base, specifier);
  });
  if (plugins.some((plugin, index) => plugin !== loaded.config.plugins[index])) {
    overrides.push(parameterOverride('plugins', plugins));
  }
  return overrides;
}

function absoluteTrackingUri(uri: string): string {
  const isUri = /^[A-Za-z][A-Za-z0-9+.-]*:/.test(uri);
  return isUri || isAbsolute(uri) ? uri : resolve(uri);
}

/** What `interleave train` would tag: the config file and the git commit of its checkout. */
function sourceTagsOf(file: string): Record<string, string> {
  const tags: Record<string, string> = { 'interleave.config_file': resolve(file) };
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], {
      cwd: dirname(resolve(file)),
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .toString()
      .trim();
    if (commit) tags['mlflow.source.git.commit'] = commit;
  } catch {
    // Not in a git checkout: no commit to record.
  }
  return tags;
}
