import { access, realpath } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import type { z } from 'zod';
import { ConfigError, type KeyPath, type SourceLocation } from './config-error.js';
import { countLayers, MAX_LAYERS } from './layers.js';
import { applyOverride, type Override, overrideLocation, parseOverride } from './overrides.js';
import { deepMerge, isPlainMap } from './plain-data.js';
import type { CoreConfig } from './schema.js';
import { fileSource, overrideSource, SourceChain } from './source-chain.js';
import { type LocationPart, parseYaml, readYamlFile, type YamlSource } from './yaml-source.js';
import { firstConfigError } from './zod-issues.js';

/** Locates config values and validates parts of the config, reporting ConfigErrors. */
export interface ConfigSource {
  /**
   * Where the value at `path` came from: an override, the file or one of its bases. For a
   * missing path, its nearest existing parent; `part: 'key'` gives the key's own position.
   */
  locate(path: KeyPath, part?: LocationPart): SourceLocation;
  /**
   * Checks `value` (the part of the config at `path`, e.g. a block's keys) against `schema`;
   * throws the first problem as a ConfigError located in the YAML, else returns zod's output.
   */
  validate<T>(schema: z.ZodType<T>, value: unknown, path: KeyPath): T;
}

/** A config after `extends`, overrides and validation: read from a file, or given as data. */
export interface LoadedConfig<Config extends CoreConfig = CoreConfig> extends ConfigSource {
  /** What messages call the config: the file's path as given, or the label of config data. */
  readonly label: string;
  /** The config file it was read from (the path as given); absent for config data, which has no file. */
  readonly file?: string;
  /** Validated, with defaults applied. */
  readonly config: Config;
  /** The merged plain data after `extends` and overrides, before defaults: what a run saves and hashes. */
  readonly resolved: Record<string, unknown>;
}

/**
 * A ConfigSource for config data that has no YAML behind it (e.g. the config a weights file
 * records): errors name `label` instead of a file position.
 */
export function configDataSource(label: string): ConfigSource {
  const locate = (): SourceLocation => ({ file: label });
  return {
    locate,
    validate: <T>(schema: z.ZodType<T>, value: unknown, path: KeyPath): T => {
      const result = schema.safeParse(value, { reportInput: true });
      if (result.success) return result.data;
      throw firstConfigError(result.error.issues, { schema, value, basePath: path, locate });
    },
  };
}

const EXTENDS_KEY = 'extends';

/**
 * A config file and its `extends` bases, read and parsed once: `resolveConfig` applies overrides
 * to it as often as needed (a sweep resolves one per trial) without reading the files again.
 */
export interface ConfigFiles {
  /** The path as given. */
  readonly file: string;
  /** The file and its bases, the file first. */
  readonly chain: readonly YamlSource[];
}

/**
 * Loads `file`: follows `extends` (paths relative to the extending file), deep-merges the chain
 * (maps merge key by key; lists and scalars are replaced), applies `key.path=value` overrides in
 * order and validates the whole file against `schema`: the experiment schema, which the package
 * that owns the file composes from core's sections (`coreConfigSections`) and its own. Every
 * problem is an InterleaveError whose message names the file, key path and line:column.
 */
export async function loadConfig<Config extends CoreConfig>(
  schema: z.ZodType<Config>,
  file: string,
  overrides: readonly string[] = [],
): Promise<LoadedConfig<Config>> {
  return resolveConfig(schema, await readConfigFiles(file), overrides);
}

/** Reads `file` and its `extends` bases, checking each is a YAML map and the chain has no cycle. */
export async function readConfigFiles(file: string): Promise<ConfigFiles> {
  return { file, chain: await readChain(file) };
}

/** `loadConfig` on files already read: merges the chain, applies `overrides`, validates against `schema`. */
export function resolveConfig<Config extends CoreConfig>(
  schema: z.ZodType<Config>,
  files: ConfigFiles,
  overrides: readonly string[] = [],
): LoadedConfig<Config> {
  return resolveSources(schema, files.chain, overrides, { label: files.file, file: files.file });
}

/**
 * A config given as YAML text rather than a file (e.g. a sweep trial's resolved config, carried
 * by a queue to a worker that may not have the sweep file): validated against `schema` exactly as
 * a file is, with problems located at `label:line:column` in the text. Config data has no file
 * beside it, so it cannot `extends` one.
 */
export function configFromText<Config extends CoreConfig>(
  schema: z.ZodType<Config>,
  text: string,
  label: string,
): LoadedConfig<Config> {
  const source = checkConfigDocument(parseYaml(text, label));
  if (baseFileOf(source) !== undefined) {
    throw new ConfigError(
      "config data cannot 'extends' a file (there is no file to resolve it against); give the resolved config",
      [EXTENDS_KEY],
      source.locate([EXTENDS_KEY]),
    );
  }
  return resolveSources(schema, [source], [], { label });
}

function resolveSources<Config extends CoreConfig>(
  schema: z.ZodType<Config>,
  chain: readonly YamlSource[],
  overrides: readonly string[],
  origin: { label: string; file?: string },
): LoadedConfig<Config> {
  const parsedOverrides = overrides.map(parseOverride);

  let merged: unknown = {};
  for (const source of [...chain].reverse()) merged = deepMerge(merged, withoutExtends(source.value));
  const resolved = structuredClone(merged) as Record<string, unknown>;
  for (const override of parsedOverrides) applyOverride(resolved, override);

  const main = fileSource(chain[0] as YamlSource);
  const sources = new SourceChain([...parsedOverrides.map(overrideSource).reverse(), ...chain.map(fileSource)], main);
  const fileRank = rankFiles(chain, parsedOverrides);
  const locate = (path: KeyPath, part: LocationPart = 'value'): SourceLocation => sources.locate(path, part);
  const validate = <T>(schema: z.ZodType<T>, value: unknown, path: KeyPath): T => {
    const result = schema.safeParse(value, { reportInput: true });
    if (result.success) return result.data;
    throw firstConfigError(result.error.issues, { schema, value, basePath: path, locate, fileRank });
  };

  const config = validate(schema, resolved, []);
  const { overflowAt } = countLayers(config.model.layers);
  if (overflowAt !== undefined) {
    throw new ConfigError(`the layers expand to more than ${MAX_LAYERS} layers`, overflowAt, locate(overflowAt));
  }
  return { ...origin, config, resolved, locate, validate };
}

/** The file and its bases, the file first. */
async function readChain(file: string): Promise<YamlSource[]> {
  const chain: YamlSource[] = [];
  const seen: string[] = [];
  let current = await readConfigFile(file);
  for (;;) {
    chain.push(current);
    seen.push(await realpath(current.file));
    const base = baseFileOf(current);
    if (base === undefined) return chain;
    const location = current.locate([EXTENDS_KEY]);
    try {
      await access(base);
    } catch {
      throw new ConfigError(`base config file not found: ${base}`, [EXTENDS_KEY], location);
    }
    const identity = await realpath(base);
    const cycleStart = seen.indexOf(identity);
    if (cycleStart >= 0) {
      const loop = [...chain.slice(cycleStart).map((source) => source.file), base].join(' -> ');
      throw new ConfigError(`'extends' forms a cycle: ${loop}`, [EXTENDS_KEY], location);
    }
    current = await readConfigFile(base);
  }
}

async function readConfigFile(file: string): Promise<YamlSource> {
  return checkConfigDocument(await readYamlFile(file));
}

/** A config document must be a map of keys. */
function checkConfigDocument(source: YamlSource): YamlSource {
  if (source.value === null) {
    throw new ConfigError('the file is empty; a config is a YAML map of keys', [], { file: source.file });
  }
  if (!isPlainMap(source.value)) {
    const kind = Array.isArray(source.value) ? 'a list' : `a single value`;
    throw new ConfigError(`a config must be a YAML map of keys, not ${kind}`, [], source.locate([]));
  }
  return source;
}

/** The base file `source` extends, as a path usable from the working directory. */
function baseFileOf(source: YamlSource): string | undefined {
  const value = (source.value as Record<string, unknown>)[EXTENDS_KEY];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value.trim() === '') {
    throw new ConfigError(
      "'extends' must be the path of one base config file (relative to this file)",
      [EXTENDS_KEY],
      source.locate([EXTENDS_KEY]),
    );
  }
  return isAbsolute(value) ? value : join(dirname(source.file), value);
}

function withoutExtends(value: unknown): unknown {
  if (!isPlainMap(value)) return value;
  const { [EXTENDS_KEY]: _ignored, ...rest } = value;
  return rest;
}

/** "Document order" across sources: overrides first (as typed), then the file, then its bases. */
function rankFiles(chain: readonly YamlSource[], overrides: readonly Override[]): (file: string) => number {
  const order = new Map<string, number>();
  overrides.forEach((override, index) => {
    order.set(overrideLocation(override).file, index);
  });
  chain.forEach((source, index) => {
    if (!order.has(source.file)) order.set(source.file, overrides.length + index);
  });
  return (file) => order.get(file) ?? Number.MAX_SAFE_INTEGER;
}
