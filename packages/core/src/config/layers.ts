import type { KeyPath } from './config-error.js';
import type { LayerEntry, PatternEntry } from './schema.js';

/** One residual layer after `repeat`/`pattern` expansion, with where it was written. */
export interface ExpandedLayer {
  readonly entry: LayerEntry;
  /** E.g. `['model', 'layers', 0, 'pattern', 1]`; repeated layers share their source path. */
  readonly path: KeyPath;
}

/** More layers than any model here needs; stops `repeat: 100000000` from exhausting memory. */
export const MAX_LAYERS = 10_000;

export function isPatternEntry(entry: LayerEntry | PatternEntry): entry is PatternEntry {
  return 'pattern' in entry && Array.isArray((entry as PatternEntry).pattern);
}

/**
 * Expands `{repeat: n, pattern: [...]}` entries (nested patterns allowed) into the flat list of
 * layers, in order, each with the key path of the entry it came from.
 */
export function expandLayers(
  layers: ReadonlyArray<LayerEntry | PatternEntry>,
  basePath: KeyPath = ['model', 'layers'],
): ExpandedLayer[] {
  const out: ExpandedLayer[] = [];
  layers.forEach((entry, index) => {
    const path = [...basePath, index];
    if (!isPatternEntry(entry)) {
      out.push({ entry, path });
      return;
    }
    const once = expandLayers(entry.pattern, [...path, 'pattern']);
    for (let i = 0; i < entry.repeat; i++) out.push(...once);
  });
  return out;
}

/**
 * The number of layers `layers` expands to, without expanding them, and the first entry at which
 * the count passes `limit` (so an oversized `repeat` can be reported where it was written).
 */
export function countLayers(
  layers: ReadonlyArray<LayerEntry | PatternEntry>,
  limit = MAX_LAYERS,
  basePath: KeyPath = ['model', 'layers'],
): { count: number; overflowAt?: KeyPath } {
  let count = 0;
  for (const [index, entry] of layers.entries()) {
    const path = [...basePath, index];
    if (!isPatternEntry(entry)) count += 1;
    else {
      const inner = countLayers(entry.pattern, limit, [...path, 'pattern']);
      if (inner.overflowAt) return { count: Number.POSITIVE_INFINITY, overflowAt: inner.overflowAt };
      count += inner.count * entry.repeat;
      if (count > limit) return { count, overflowAt: [...path, 'repeat'] };
    }
    if (count > limit) return { count, overflowAt: path };
  }
  return { count };
}
