import type { KeyPath, SourceLocation } from './config-error.js';
import { type Override, overrideLocation } from './overrides.js';
import { isPlainMap, valuesAlong } from './plain-data.js';
import type { LocationPart, YamlSource } from './yaml-source.js';

/** How much of a key path one source holds. */
interface Lookup {
  /**
   * `all`: the source holds the whole path. `replaced`: the source set a parent of the path as a
   * whole (a list, a scalar, an override's value), so no source below it can hold the path.
   * `partial`: the source holds the first `depth` segments, as maps that merge with sources below.
   */
  found: 'all' | 'replaced' | 'partial';
  depth: number;
}

/** A place config values come from: a YAML file or a `--set` override. */
export interface ValueSource {
  readonly kind: 'file' | 'override';
  lookup(path: KeyPath): Lookup;
  locate(path: KeyPath, part: LocationPart): SourceLocation;
}

export function fileSource(source: YamlSource): ValueSource {
  return {
    kind: 'file',
    lookup(path) {
      const values = valuesAlong(source.value, path);
      const depth = values.length - 1;
      if (depth === path.length) return { found: 'all', depth };
      // Below the root, a value that is not a map replaced the base files' value at that key.
      const replaced = values.slice(1).some((value) => !isPlainMap(value));
      return { found: replaced ? 'replaced' : 'partial', depth };
    },
    locate: (path, part) => source.locate(path, part),
  };
}

export function overrideSource(override: Override): ValueSource {
  const target = override.path;
  return {
    kind: 'override',
    lookup(path) {
      let depth = 0;
      while (depth < path.length && depth < target.length && String(path[depth]) === String(target[depth])) depth++;
      if (depth === target.length) return { found: 'replaced', depth };
      return { found: depth === path.length ? 'all' : 'partial', depth };
    },
    locate: () => overrideLocation(override),
  };
}

/**
 * Finds where a value of the merged config came from. Sources are given highest priority first:
 * the last override, ..., the first override, the file, its base, the base's base.
 */
export class SourceChain {
  constructor(
    private readonly sources: readonly ValueSource[],
    private readonly root: ValueSource,
  ) {}

  /**
   * The value's position in the source that set it; `part: 'key'` gives its key's position. For
   * a missing path, the nearest existing parent, preferring a file to an override that merely
   * created that parent on the way to its own key.
   */
  locate(path: KeyPath, part: LocationPart = 'value'): SourceLocation {
    let fallback: { source: ValueSource; depth: number } | undefined;
    for (const source of this.sources) {
      const { found, depth } = source.lookup(path);
      if (found === 'replaced' || (found === 'all' && source.kind === 'file')) return source.locate(path, part);
      const better =
        fallback === undefined ||
        depth > fallback.depth ||
        (depth === fallback.depth && fallback.source.kind === 'override' && source.kind === 'file');
      if (depth > 0 && better) fallback = { source, depth };
    }
    return (fallback?.source ?? this.root).locate(path, part);
  }
}
