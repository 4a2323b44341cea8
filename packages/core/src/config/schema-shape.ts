import type { KeyPath } from './config-error.js';

/**
 * Reads the shape of a zod v4 schema (through `_zod.def`) to find the schemas that apply at a
 * key path: the keys a map allows, whether a value may be null, a union's options. Used only to
 * word error messages; validation itself is zod's.
 */
interface SchemaDef {
  type: string;
  shape?: Record<string, unknown>;
  catchall?: unknown;
  element?: unknown;
  items?: unknown[];
  rest?: unknown;
  valueType?: unknown;
  options?: unknown[];
  innerType?: unknown;
  getter?: () => unknown;
  in?: unknown;
  left?: unknown;
  right?: unknown;
}

export function schemaDef(schema: unknown): SchemaDef | undefined {
  return (schema as { _zod?: { def?: SchemaDef } } | null | undefined)?._zod?.def;
}

const WRAPPERS = new Set(['optional', 'nullable', 'default', 'prefault', 'nonoptional', 'readonly', 'catch']);

/** The schema under optional/nullable/default/lazy/pipe wrappers (a pipe's input side). */
export function unwrapSchema(schema: unknown): unknown {
  let current = schema;
  for (let depth = 0; depth < 64; depth++) {
    const def = schemaDef(current);
    if (def === undefined) return current;
    if (WRAPPERS.has(def.type)) current = def.innerType;
    else if (def.type === 'lazy' && def.getter) current = def.getter();
    else if (def.type === 'pipe') current = def.in;
    else return current;
  }
  return current;
}

/** Whether `null` passes the wrappers around this schema (`.nullable()`). */
export function acceptsNull(schema: unknown): boolean {
  let current = schema;
  for (let depth = 0; depth < 64; depth++) {
    const def = schemaDef(current);
    if (def === undefined) return false;
    if (def.type === 'nullable' || def.type === 'null') return true;
    if (WRAPPERS.has(def.type)) current = def.innerType;
    else if (def.type === 'lazy' && def.getter) current = def.getter();
    else if (def.type === 'pipe') current = def.in;
    else return false;
  }
  return false;
}

function childSchemas(schema: unknown, segment: string | number): unknown[] {
  const inner = unwrapSchema(schema);
  const def = schemaDef(inner);
  if (def === undefined) return [];
  switch (def.type) {
    case 'object': {
      const child = def.shape?.[String(segment)];
      if (child !== undefined) return [child];
      return def.catchall !== undefined ? [def.catchall] : [];
    }
    case 'array':
      return def.element !== undefined ? [def.element] : [];
    case 'tuple': {
      const item = typeof segment === 'number' ? def.items?.[segment] : undefined;
      if (item !== undefined) return [item];
      return def.rest != null ? [def.rest] : [];
    }
    case 'record':
      return def.valueType !== undefined ? [def.valueType] : [];
    case 'union':
      return (def.options ?? []).flatMap((option) => childSchemas(option, segment));
    case 'intersection':
      return [...childSchemas(def.left, segment), ...childSchemas(def.right, segment)];
    default:
      return [];
  }
}

/** Every schema that may apply to the value at `path` below `root` (several where unions branch). */
export function schemasAt(root: unknown, path: KeyPath): unknown[] {
  let current = [root];
  for (const segment of path) current = current.flatMap((schema) => childSchemas(schema, segment));
  return current;
}

/** The keys the map schemas among `schemas` declare, in declaration order. */
export function declaredKeys(schemas: readonly unknown[]): string[] {
  const keys = new Set<string>();
  const visit = (schema: unknown, depth: number): void => {
    if (depth > 16) return;
    const def = schemaDef(unwrapSchema(schema));
    if (def?.type === 'object') for (const key of Object.keys(def.shape ?? {})) keys.add(key);
    else if (def?.type === 'union') for (const option of def.options ?? []) visit(option, depth + 1);
    else if (def?.type === 'intersection') {
      visit(def.left, depth + 1);
      visit(def.right, depth + 1);
    }
  };
  for (const schema of schemas) visit(schema, 0);
  return [...keys];
}

/** A union among `schemas` (after unwrapping), with its options in order. */
export function unionOptions(schemas: readonly unknown[]): unknown[] | undefined {
  for (const schema of schemas) {
    const def = schemaDef(unwrapSchema(schema));
    if (def?.type === 'union') return def.options ?? [];
  }
  return undefined;
}

/** A tuple's fixed length, when the schema is a tuple without a rest element. */
export function tupleLength(schemas: readonly unknown[]): number | undefined {
  for (const schema of schemas) {
    const def = schemaDef(unwrapSchema(schema));
    if (def?.type === 'tuple' && def.rest == null) return def.items?.length;
  }
  return undefined;
}
