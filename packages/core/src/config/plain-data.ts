import type { KeyPath } from './config-error.js';

/** A YAML map as plain data: an object that is not a list (null is not a map). */
export function isPlainMap(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `child` over `base`: maps merge key by key (recursively); anything else (lists, scalars, null)
 * in `child` replaces the base value. Returns new maps; neither input is changed.
 */
export function deepMerge(base: unknown, child: unknown): unknown {
  if (!isPlainMap(base) || !isPlainMap(child)) return child;
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(child)) {
    merged[key] = key in base ? deepMerge(base[key], value) : value;
  }
  return merged;
}

/** The child of a map or list at one path segment (`1` and `'1'` both name item 1 or key '1'). */
export function childAt(container: unknown, segment: string | number): { found: boolean; value: unknown } {
  if (Array.isArray(container)) {
    const index = typeof segment === 'number' ? segment : /^\d+$/.test(segment) ? Number(segment) : -1;
    if (index < 0 || index >= container.length) return { found: false, value: undefined };
    return { found: true, value: container[index] };
  }
  if (isPlainMap(container) && Object.hasOwn(container, String(segment))) {
    return { found: true, value: container[String(segment)] };
  }
  return { found: false, value: undefined };
}

/** The value at `path`, or undefined when any segment is missing. */
export function valueAt(root: unknown, path: KeyPath): unknown {
  let current = root;
  for (const segment of path) {
    const next = childAt(current, segment);
    if (!next.found) return undefined;
    current = next.value;
  }
  return current;
}

/** Values along `path` that exist: `[root, root[path0], ...]`, stopping at the first missing segment. */
export function valuesAlong(root: unknown, path: KeyPath): unknown[] {
  const values = [root];
  let current = root;
  for (const segment of path) {
    const next = childAt(current, segment);
    if (!next.found) break;
    current = next.value;
    values.push(current);
  }
  return values;
}
