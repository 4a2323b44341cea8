import { createHash } from 'node:crypto';
import { MAX_PARAM_VALUE_LENGTH } from '../tracking/mlflow-names.js';
import { isPlainMap } from './plain-data.js';

const TRUNCATED = '...[truncated]';

/**
 * The resolved config as MLflow params: dotted keys (`train.optimizer.lr` → `'0.001'`), lists
 * of scalars as JSON (`[0.9,0.98]`), lists that hold maps flattened by index
 * (`model.layers.0.pattern.1.window`). Values longer than MLflow allows are truncated.
 */
export function flattenForParams(resolved: Record<string, unknown>): Record<string, string> {
  const params: Record<string, string> = {};
  const visit = (value: unknown, key: string): void => {
    if (isPlainMap(value) && Object.keys(value).length > 0) {
      for (const [child, inner] of Object.entries(value)) visit(inner, key === '' ? child : `${key}.${child}`);
    } else if (Array.isArray(value) && value.some(containsMap)) {
      value.forEach((item, index) => {
        visit(item, key === '' ? String(index) : `${key}.${index}`);
      });
    } else if (key !== '') {
      params[key] = truncateParam(paramText(value));
    }
  };
  visit(resolved, '');
  return params;
}

function containsMap(value: unknown): boolean {
  if (isPlainMap(value)) return true;
  return Array.isArray(value) && value.some(containsMap);
}

function paramText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === undefined) return 'null';
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  return JSON.stringify(value) ?? String(value);
}

/** Cuts `text` to `limit` UTF-16 units, never splitting a surrogate pair, marking the cut. */
export function truncateParam(text: string, limit = MAX_PARAM_VALUE_LENGTH): string {
  if (text.length <= limit) return text;
  let end = limit - TRUNCATED.length;
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end -= 1;
  return text.slice(0, end) + TRUNCATED;
}

/** JSON with map keys sorted at every level, so equal configs give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value)) ?? 'null';
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (!isPlainMap(value)) return Object.is(value, -0) ? 0 : value;
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    if (value[key] !== undefined) sorted[key] = sortKeys(value[key]);
  }
  return sorted;
}

/** The first 16 hex digits of the sha256 of the config's canonical JSON. */
export function configHash(resolved: unknown): string {
  return createHash('sha256').update(canonicalJson(resolved)).digest('hex').slice(0, 16);
}
