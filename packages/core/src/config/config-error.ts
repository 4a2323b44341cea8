import { InterleaveError } from '../errors.js';

/** Where a config value came from: a YAML file position, or a command-line override. */
export interface SourceLocation {
  file: string;
  /** 1-based; absent when the value has no position (e.g. a missing key in an empty file). */
  line?: number;
  /** 1-based. */
  column?: number;
}

export type KeyPath = ReadonlyArray<string | number>;

/** Renders `model.layers[0].block`. */
export function formatKeyPath(path: KeyPath): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? part : `.${part}`;
  }
  return out === '' ? '(top level)' : out;
}

export function formatLocation(location: SourceLocation): string {
  if (location.line === undefined) return location.file;
  return `${location.file}:${location.line}:${location.column ?? 1}`;
}

/** A config problem, always reported as `file:line:col: key.path: problem`. */
export class ConfigError extends InterleaveError {
  override name = 'ConfigError';
  constructor(
    readonly problem: string,
    readonly keyPath: KeyPath,
    readonly location: SourceLocation,
  ) {
    super(`${formatLocation(location)}: ${formatKeyPath(keyPath)}: ${problem}`);
  }
}
