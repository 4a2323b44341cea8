import type { z } from 'zod';
import { ConfigError, displayText, type KeyPath, type SourceLocation } from './config-error.js';
import { isPlainMap, valueAt } from './plain-data.js';
import { acceptsNull, declaredKeys, schemasAt, tupleLength, unionOptions } from './schema-shape.js';
import { closestMatch } from './suggest.js';
import type { LocationPart } from './yaml-source.js';

type Issue = z.core.$ZodIssue;

/** What turning zod issues into ConfigErrors needs to know. */
export interface IssueContext {
  /** The schema the value was checked against. */
  readonly schema: unknown;
  /** The value that was checked. */
  readonly value: unknown;
  /** Where `value` sits in the config (`[]` for the whole config). */
  readonly basePath: KeyPath;
  locate(path: KeyPath, part: LocationPart): SourceLocation;
  /** Orders files for "document order": lower first. Defaults to 0 for every file. */
  fileRank?(file: string): number;
}

/** One problem, its path relative to the checked value. */
interface Problem {
  path: KeyPath;
  problem: string;
  part: LocationPart;
  /** A missing key, or an unknown key with the suggestion it was given. */
  missing?: { parent: string; key: string };
  suggested?: { parent: string; key: string };
}

/**
 * Turns zod issues into ConfigErrors in document order, the most useful first. An unknown key
 * that looks like a misspelt required key hides that key's "missing" error (one mistake, one
 * message); union errors report the branch the value was evidently meant for.
 */
export function configErrorsFromIssues(issues: readonly Issue[], context: IssueContext): ConfigError[] {
  const problems: Problem[] = [];
  collect(issues, context.schema, context.value, [], problems);
  const misspelt = new Set(problems.flatMap((p) => (p.suggested ? [pairKey(p.suggested)] : [])));
  const kept = problems.filter((p) => !(p.missing && misspelt.has(pairKey(p.missing))));
  const rank = context.fileRank ?? (() => 0);
  const errors = kept.map((p) => {
    const path = [...context.basePath, ...p.path];
    return new ConfigError(p.problem, path, context.locate(path, p.part));
  });
  const order = (location: SourceLocation): number[] => [rank(location.file), location.line ?? 0, location.column ?? 0];
  return errors
    .map((error, index) => ({ error, key: [...order(error.location), index] }))
    .sort((a, b) => compareNumbers(a.key, b.key))
    .map(({ error }) => error);
}

/** The first ConfigError for a failed parse (see configErrorsFromIssues). */
export function firstConfigError(issues: readonly Issue[], context: IssueContext): ConfigError {
  const [first] = configErrorsFromIssues(issues, context);
  if (first !== undefined) return first;
  return new ConfigError('invalid value', context.basePath, context.locate(context.basePath, 'value'));
}

function compareNumbers(a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const difference = (a[i] ?? 0) - (b[i] ?? 0);
    if (difference !== 0) return difference;
  }
  return a.length - b.length;
}

/** An unknown key's message lists the section's keys up to this many (the `train:` section has 13). */
const MAX_LISTED_KEYS = 16;

const pairKey = ({ parent, key }: { parent: string; key: string }): string => `${parent}\u0000${key}`;
const pathKey = (path: KeyPath): string => path.map(String).join('\u0000');

/** `issues` are relative to `value`, which `schema` checked; `prefix` is where value sits. */
function collect(issues: readonly Issue[], schema: unknown, value: unknown, prefix: KeyPath, out: Problem[]): void {
  for (const issue of issues) {
    const path = issue.path as KeyPath;
    const full = [...prefix, ...path];
    switch (issue.code) {
      case 'unrecognized_keys': {
        const container = valueAt(value, path);
        const present = new Set(isPlainMap(container) ? Object.keys(container) : []);
        const known = declaredKeys(schemasAt(schema, path));
        const missingHere = issues.flatMap((other) =>
          other.code === 'invalid_type' &&
          other.path.length === path.length + 1 &&
          pathKey(other.path.slice(0, -1) as KeyPath) === pathKey(path)
            ? [String(other.path[other.path.length - 1])]
            : [],
        );
        const candidates = [...new Set([...missingHere, ...known])].filter((key) => !present.has(key));
        for (const key of issue.keys) {
          const suggestion = closestMatch(key, candidates);
          let problem = `unknown key '${displayText(key, 40)}'`;
          if (suggestion !== undefined) problem += `; did you mean '${suggestion}'?`;
          else if (known.length > 0 && known.length <= MAX_LISTED_KEYS)
            problem += ` (allowed keys: ${known.join(', ')})`;
          out.push({
            path: [...full, key],
            problem,
            part: 'key',
            ...(suggestion !== undefined ? { suggested: { parent: pathKey(full), key: suggestion } } : {}),
          });
        }
        break;
      }
      case 'invalid_type': {
        const schemas = schemasAt(schema, path);
        const expected = describeExpected(issue.expected, schemas);
        const last = path[path.length - 1];
        const parent = valueAt(value, path.slice(0, -1));
        if (last !== undefined && isPlainMap(parent) && !Object.hasOwn(parent, String(last))) {
          out.push({
            path: full,
            problem: `missing required key '${String(last)}' (expected ${expected})`,
            part: 'value',
            missing: { parent: pathKey(full.slice(0, -1)), key: String(last) },
          });
        } else {
          out.push({
            path: full,
            problem: `expected ${expected}, got ${describeValue(valueAt(value, path))}`,
            part: 'value',
          });
        }
        break;
      }
      case 'invalid_value': {
        const actual = valueAt(value, path);
        const allowed = issue.values.map(formatScalar);
        let problem =
          allowed.length === 1
            ? `must be ${allowed[0]} (got ${formatScalar(actual)})`
            : `must be one of ${allowed.join(', ')} (got ${formatScalar(actual)})`;
        if (typeof actual === 'string') {
          const suggestion = closestMatch(
            actual,
            issue.values.filter((v): v is string => typeof v === 'string'),
          );
          if (suggestion !== undefined) problem += `; did you mean '${suggestion}'?`;
        }
        out.push({ path: full, problem, part: 'value' });
        break;
      }
      case 'too_small':
      case 'too_big':
        out.push({
          path: full,
          problem: describeBound(issue, valueAt(value, path), schemasAt(schema, path)),
          part: 'value',
        });
        break;
      case 'invalid_union':
        collectUnion(issue, schema, value, prefix, out);
        break;
      default:
        out.push({ path: full, problem: issue.message, part: 'value' });
    }
  }
}

/**
 * Reports the union branch the value was meant for: the option that declares most of the keys
 * the value has (then: one that at least accepts its type, then: the fewest issues).
 */
function collectUnion(
  issue: z.core.$ZodIssueInvalidUnion,
  schema: unknown,
  value: unknown,
  prefix: KeyPath,
  out: Problem[],
): void {
  const path = issue.path as KeyPath;
  const input = valueAt(value, path);
  const branches = issue.errors;
  const rootTypeErrors = branches.map((errors) =>
    errors.filter((e): e is z.core.$ZodIssueInvalidType => e.code === 'invalid_type' && e.path.length === 0),
  );
  if (branches.length > 0 && rootTypeErrors.every((errors) => errors.length > 0)) {
    const expected = [...new Set(rootTypeErrors.flatMap((errors) => errors.map((e) => describeType(e.expected))))];
    out.push({
      path: [...prefix, ...path],
      problem: `expected ${expected.join(' or ')}, got ${describeValue(input)}`,
      part: 'value',
    });
    return;
  }
  const options = unionOptions(schemasAt(schema, path)) ?? [];
  const presentKeys = isPlainMap(input) ? Object.keys(input) : [];
  const scored = branches.map((errors, index) => {
    const declared = new Set(declaredKeys([options[index]]));
    return {
      index,
      errors,
      typeMismatch: (rootTypeErrors[index]?.length ?? 0) > 0 ? 1 : 0,
      matchedKeys: presentKeys.filter((key) => declared.has(key)).length,
    };
  });
  scored.sort(
    (a, b) =>
      a.typeMismatch - b.typeMismatch ||
      b.matchedKeys - a.matchedKeys ||
      a.errors.length - b.errors.length ||
      a.index - b.index,
  );
  const best = scored[0];
  if (best === undefined) {
    out.push({ path: [...prefix, ...path], problem: issue.message, part: 'value' });
    return;
  }
  collect(best.errors, options[best.index], input, [...prefix, ...path], out);
}

const TYPE_NAMES: Record<string, string> = {
  object: 'map',
  array: 'list',
  tuple: 'list',
  record: 'map',
  int: 'integer',
};

function describeType(expected: string): string {
  return TYPE_NAMES[expected] ?? expected;
}

function describeExpected(expected: string, schemas: readonly unknown[]): string {
  const base = describeType(expected);
  return schemas.some(acceptsNull) && base !== 'null' ? `${base} or null` : base;
}

/** `string ('abc')`, `number (2.5)`, `list`, `map`, `null`. */
function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'list';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  if (typeof value === 'object') return 'map';
  return `${typeof value} (${formatScalar(value)})`;
}

/** A scalar the way a user would write it back: strings quoted, others as they print. */
function formatScalar(value: unknown): string {
  if (typeof value === 'string') return `'${displayText(value)}'`;
  if (value === undefined) return 'nothing';
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'a list' : 'a map';
}

function describeBound(
  issue: z.core.$ZodIssueTooSmall | z.core.$ZodIssueTooBig,
  actual: unknown,
  schemas: readonly unknown[],
): string {
  const small = issue.code === 'too_small';
  const limit = Number(small ? (issue as z.core.$ZodIssueTooSmall).minimum : (issue as z.core.$ZodIssueTooBig).maximum);
  const inclusive = issue.inclusive ?? true;
  switch (issue.origin) {
    case 'number':
    case 'int':
    case 'bigint': {
      const operator = small ? (inclusive ? '>=' : '>') : inclusive ? '<=' : '<';
      return `must be ${operator} ${limit} (got ${formatScalar(actual)})`;
    }
    case 'array':
    case 'set': {
      const count = Array.isArray(actual) ? actual.length : undefined;
      const got = count === undefined ? '' : ` (got ${count})`;
      const exact = tupleLength(schemas);
      const items = (n: number) => `${n} item${n === 1 ? '' : 's'}`;
      if (exact !== undefined) return `needs exactly ${items(exact)}${got}`;
      return small ? `needs at least ${items(limit)}${got}` : `allows at most ${items(limit)}${got}`;
    }
    case 'string':
      if (small && limit === 1) return 'must not be empty';
      return small ? `needs at least ${limit} characters` : `allows at most ${limit} characters`;
    default:
      return issue.message;
  }
}
