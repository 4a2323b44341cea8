import { parseDocument } from 'yaml';
import { InterleaveError } from '../errors.js';
import { ConfigError, formatKeyPath, type SourceLocation } from './config-error.js';

/** A command-line override, `train.steps=30` (given to the CLI as `--set train.steps=30`). */
export interface Override {
  /** As typed. */
  readonly text: string;
  readonly path: ReadonlyArray<string | number>;
  /** The text after `=`, read as a YAML scalar or flow value (`30`, `null`, `[1, 2]`, `{a: 1}`, `abc`). */
  readonly value: unknown;
}

/** Where a value set by an override came from: `--set train.steps=30`, with no line. */
export function overrideLocation(override: Override): SourceLocation {
  return { file: `--set ${override.text}` };
}

/**
 * Parses `key.path=value`. The path splits on `.`; list items are `[n]` or a numeric segment
 * (`model.layers[1].window` or `model.layers.1.window`).
 */
export function parseOverride(text: string): Override {
  const equals = text.indexOf('=');
  if (equals < 0) throw new InterleaveError(`invalid override '${text}': expected key.path=value`);
  const pathText = text.slice(0, equals).trim();
  if (pathText === '') throw new InterleaveError(`invalid override '${text}': the key path before '=' is empty`);
  const path = parsePathText(pathText, text);
  const valueText = text.slice(equals + 1);
  const doc = parseDocument(valueText, { prettyErrors: false });
  const error = doc.errors[0];
  if (error !== undefined) {
    const reason = error.message.split('\n')[0] ?? error.message;
    throw new InterleaveError(`invalid override '${text}': the value is not valid YAML (${reason})`);
  }
  return { text, path, value: doc.toJS() ?? null };
}

function parsePathText(pathText: string, text: string): Array<string | number> {
  const path: Array<string | number> = [];
  for (const segment of pathText.split('.')) {
    const match = /^([^[\]]*)((?:\[\d+\])*)$/.exec(segment);
    const name = match?.[1] ?? '';
    const indices = match?.[2] ?? '';
    if (match === null || (name === '' && indices === '')) {
      throw new InterleaveError(
        `invalid override '${text}': bad key path '${pathText}' (use names separated by '.', and [n] or .n for list items)`,
      );
    }
    if (name !== '') path.push(/^\d+$/.test(name) ? Number(name) : name);
    for (const index of indices.matchAll(/\[(\d+)\]/g)) path.push(Number(index[1]));
  }
  return path;
}

const isMap = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Sets the override's value in `target` (in place), creating missing maps on the way; the value
 * replaces whatever was there. A list index may point at an existing item or one past the end.
 */
export function applyOverride(target: Record<string, unknown>, override: Override): void {
  const { path } = override;
  let container: unknown = target;
  for (const [depth, segment] of path.entries()) {
    const last = depth === path.length - 1;
    const here = path.slice(0, depth);
    if (Array.isArray(container)) {
      if (typeof segment !== 'number') {
        throw new ConfigError(
          `'${formatKeyPath(here)}' is a list; use a number (e.g. ${formatKeyPath([...here, 0])}) instead of '${segment}'`,
          here,
          overrideLocation(override),
        );
      }
      if (segment > container.length) {
        throw new ConfigError(
          `list index ${segment} is out of range ('${formatKeyPath(here)}' has ${container.length} items)`,
          path.slice(0, depth + 1),
          overrideLocation(override),
        );
      }
      if (last) container[segment] = override.value;
      else {
        if (container[segment] === undefined) container[segment] = typeof path[depth + 1] === 'number' ? [] : {};
        container = container[segment];
      }
    } else if (isMap(container)) {
      const key = String(segment);
      if (last) container[key] = override.value;
      else {
        if (container[key] === undefined || container[key] === null) {
          container[key] = typeof path[depth + 1] === 'number' ? [] : {};
        }
        container = container[key];
      }
    } else {
      const kind = container === null ? 'null' : typeof container;
      throw new ConfigError(
        `cannot set a key inside '${formatKeyPath(here)}': it is ${kind === 'null' ? 'null' : `a ${kind}`}, not a map or list`,
        here,
        overrideLocation(override),
      );
    }
  }
}
