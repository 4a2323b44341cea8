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

/** Longer key paths show their first and last segments: a message stays one readable line. */
const MAX_SHOWN_SEGMENTS = 12;

/** Renders `model.layers[0].block`; see `displayText` for how odd keys are shown. */
export function formatKeyPath(path: KeyPath): string {
  const shown: Array<string | number> = [...path];
  let hidden = 0;
  if (path.length > MAX_SHOWN_SEGMENTS) {
    hidden = path.length - MAX_SHOWN_SEGMENTS;
    shown.splice(MAX_SHOWN_SEGMENTS / 2, hidden);
  }
  let out = '';
  shown.forEach((part, index) => {
    if (hidden > 0 && index === MAX_SHOWN_SEGMENTS / 2) out += `...(${hidden} more)`;
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? displayText(part, 40) : `.${displayText(part, 40)}`;
  });
  return out === '' ? '(top level)' : out;
}

/** Control characters and bidirectional overrides, which would break a message's one line or reorder it. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters it escapes.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufeff]/g;

/**
 * Text from a config (a key, a value) as a message shows it: control characters escaped
 * (`\n`, `\u0000`) so the message stays on one line, and cut to `limit` characters with `...`.
 */
export function displayText(text: string, limit = 60): string {
  const cut = text.length > limit ? `${text.slice(0, limit - 3)}...` : text;
  return cut.replace(UNPRINTABLE, (character) => {
    const named: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
    return named[character] ?? `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

export function formatLocation(location: SourceLocation): string {
  if (location.line === undefined) return location.file;
  return `${location.file}:${location.line}:${location.column ?? 1}`;
}

/**
 * Longer than any problem this code writes; a problem that quotes a huge value from the config
 * (a 200 000-character block name) is cut here, whoever wrote it.
 */
const MAX_PROBLEM_LENGTH = 1000;

/**
 * A config problem, always reported as `file:line:col: key.path: problem`, on one line: control
 * characters in the problem are escaped and it is cut at MAX_PROBLEM_LENGTH (`problem` keeps it whole).
 */
export class ConfigError extends InterleaveError {
  override name = 'ConfigError';
  constructor(
    readonly problem: string,
    readonly keyPath: KeyPath,
    readonly location: SourceLocation,
  ) {
    super(`${formatLocation(location)}: ${formatKeyPath(keyPath)}: ${displayText(problem, MAX_PROBLEM_LENGTH)}`);
  }
}
