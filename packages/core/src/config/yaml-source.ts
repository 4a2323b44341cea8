import { readFile } from 'node:fs/promises';
import {
  type Alias,
  type Document,
  isAlias,
  isCollection,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type ParsedNode,
  parseDocument,
  type YAMLError,
} from 'yaml';
import { InterleaveError } from '../errors.js';
import { ConfigError, displayText, type KeyPath, type SourceLocation } from './config-error.js';

/** `value`: where the value starts (a block map or list: its key's line); `key`: the key itself. */
export type LocationPart = 'value' | 'key';

/** One parsed YAML file that can say where any of its values was written. */
export interface YamlSource {
  readonly file: string;
  /** The document as plain data (maps → objects, sequences → arrays); null for an empty file. */
  readonly value: unknown;
  /** How many leading segments of `path` exist in this file (`path.length` when all do). */
  existingDepth(path: KeyPath): number;
  /**
   * Where the value at `path` was written; with `part: 'key'`, where its key was. For a path that
   * does not exist, the position of its nearest existing parent.
   */
  locate(path: KeyPath, part?: LocationPart): SourceLocation;
}

type AnyNode = ParsedNode | null | undefined;

/** A step down the document: the value reached, and the key it was reached through (maps only). */
interface Step {
  node: AnyNode;
  key?: AnyNode;
}

/** Reads and parses a config file; a missing file is a one-line InterleaveError. */
export async function readYamlFile(file: string): Promise<YamlSource> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InterleaveError(`config file not found: ${file}`);
    if (code === 'EISDIR') throw new InterleaveError(`config path is a directory, not a file: ${file}`);
    throw new InterleaveError(`cannot read config file ${file}: ${(error as Error).message}`);
  }
  return parseYaml(text, file);
}

/**
 * Parses YAML text named `file`. Syntax errors and duplicate keys become ConfigErrors with the
 * line and column (and, where it can be told, the key path) of the problem.
 */
export function parseYaml(text: string, file: string): YamlSource {
  const lineCounter = new LineCounter();
  const at = (offset: number): SourceLocation => {
    const { line, col } = lineCounter.linePos(offset);
    return { file, line, column: col };
  };
  let doc: Document.Parsed;
  try {
    doc = parseDocument(text, { lineCounter, uniqueKeys: false, prettyErrors: false });
  } catch (error) {
    // yaml's parser recurses once per open block collection: thousands of indentation levels overflow it.
    if (!(error instanceof RangeError)) throw error;
    const line = firstLineDeeperThan(MAX_NESTING, text);
    const problem = `the YAML nests deeper than ${MAX_NESTING} levels; a config needs a few`;
    throw new ConfigError(problem, [], line === undefined ? { file } : { file, line, column: 1 });
  }
  const tooDeep = firstNodeDeeperThan(MAX_NESTING, doc.contents, []);
  if (tooDeep !== undefined) {
    const problem = `the YAML nests deeper than ${MAX_NESTING} levels; a config needs a few`;
    throw new ConfigError(problem, tooDeep.path, at(tooDeep.node.range[0]));
  }
  const firstError = doc.errors[0];
  if (firstError !== undefined) throw syntaxError(firstError, doc, text, at);
  checkKeys(doc.contents, [], at);
  return new ParsedYamlSource(file, doc, toPlainData(doc, file, at), at);
}

/**
 * Deeper than any config (the deepest shipped key path has 7 segments), shallow enough that
 * walking the document can never exhaust the stack.
 */
export const MAX_NESTING = 64;

/** How many alias expansions a document may hold (yaml's own default): stops alias bombs. */
const MAX_ALIAS_COUNT = 100;

/** The document as plain data; aliases that point nowhere or expand too far are located errors. */
function toPlainData(doc: Document.Parsed, file: string, at: (offset: number) => SourceLocation): unknown {
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) ?? null;
  } catch (error) {
    const message = (error as Error).message;
    const unresolved = /^Unresolved alias/.test(message);
    const alias = firstAlias(doc.contents, [], (node) => !unresolved || node.resolve(doc) === undefined);
    const problem = unresolved
      ? `YAML alias '*${alias?.node.source ?? '?'}' has no anchor '&${alias?.node.source ?? '?'}' before it`
      : /Excessive alias count/.test(message)
        ? `YAML aliases expand to more than ${MAX_ALIAS_COUNT} copies (an alias bomb?); write the values out`
        : `cannot read the YAML document: ${message.split('\n')[0]}`;
    const offset = alias?.node.range?.[0];
    if (alias === undefined || offset === undefined) throw new ConfigError(problem, [], { file });
    throw new ConfigError(problem, alias.path, at(offset));
  }
}

/**
 * The first line indented deeper than `limit` nested blocks, counted from indentation alone
 * (for text too deep for the parser to read, so there is no document to walk).
 */
function firstLineDeeperThan(limit: number, text: string): number | undefined {
  const open: number[] = [];
  const lines = text.split('\n');
  for (const [index, line] of lines.entries()) {
    const content = line.trimStart();
    if (content === '' || content.startsWith('#')) continue;
    const indent = line.length - content.length;
    while (open.length > 0 && (open[open.length - 1] as number) >= indent) open.pop();
    open.push(indent);
    if (open.length > limit) return index + 1;
  }
  return undefined;
}

/** The first node (in document order) nested more than `limit` collections deep, with its key path. */
function firstNodeDeeperThan(
  limit: number,
  node: AnyNode,
  path: KeyPath,
): { node: ParsedNode; path: KeyPath } | undefined {
  if (node == null || !isCollection(node)) return undefined;
  if (path.length >= limit) return { node, path };
  for (const [index, item] of node.items.entries()) {
    // A complex key (a map used as a key) nests too, under a path with no name for it.
    const children: Array<[AnyNode, KeyPath]> = isPair(item)
      ? [
          [item.key as AnyNode, [...path, '?']],
          [item.value as AnyNode, [...path, keyName(item.key) ?? '?']],
        ]
      : [[item as AnyNode, [...path, index]]];
    for (const [child, childPath] of children) {
      const found = firstNodeDeeperThan(limit, child, childPath);
      if (found) return found;
    }
  }
  return undefined;
}

/** The first alias (in document order) that `matches`, with its key path. */
function firstAlias(
  node: AnyNode,
  path: KeyPath,
  matches: (alias: Alias) => boolean,
): { node: Alias; path: KeyPath } | undefined {
  if (node == null) return undefined;
  if (isAlias(node)) return matches(node) ? { node, path } : undefined;
  if (!isCollection(node)) return undefined;
  for (const [index, item] of node.items.entries()) {
    const found = isPair(item)
      ? (firstAlias(item.key as AnyNode, path, matches) ??
        firstAlias(item.value as AnyNode, [...path, keyName(item.key) ?? '?'], matches))
      : firstAlias(item as AnyNode, [...path, index], matches);
    if (found) return found;
  }
  return undefined;
}

class ParsedYamlSource implements YamlSource {
  constructor(
    readonly file: string,
    private readonly doc: Document.Parsed,
    readonly value: unknown,
    private readonly at: (offset: number) => SourceLocation,
  ) {}

  existingDepth(path: KeyPath): number {
    return this.walk(path).length - 1;
  }

  locate(path: KeyPath, part: LocationPart = 'value'): SourceLocation {
    const steps = this.walk(path);
    const last = steps[steps.length - 1] as Step;
    if (steps.length - 1 === path.length && part === 'key' && last.key) return this.at(last.key.range[0]);
    return this.valueLocation(last);
  }

  /** The steps from the root down `path`, as far as it exists (the root is the first step). */
  private walk(path: KeyPath): Step[] {
    const steps: Step[] = [{ node: this.doc.contents }];
    for (const segment of path) {
      const parent = steps[steps.length - 1] as Step;
      const next = childStep(this.doc, parent.node, segment);
      if (next === undefined) break;
      steps.push(next);
    }
    return steps;
  }

  private valueLocation(step: Step): SourceLocation {
    const { node, key } = step;
    const empty = node == null || (isScalar(node) && node.range[0] === node.range[1]);
    const block = isCollection(node) && !node.flow;
    if ((empty || block) && key) return this.at(key.range[0]);
    if (node == null) return { file: this.file };
    return this.at(node.range[0]);
  }
}

function resolveAlias(doc: Document.Parsed, node: AnyNode): AnyNode {
  let current = node;
  for (let hops = 0; isAlias(current) && hops < 100; hops++) current = current.resolve(doc) as AnyNode;
  return current;
}

/** A map key as the plain key it becomes (`1:` → '1'), or undefined for complex/empty keys. */
function keyName(key: unknown): string | undefined {
  if (!isScalar(key) || key.value === null || typeof key.value === 'object') return undefined;
  return String(key.value);
}

function childStep(doc: Document.Parsed, parent: AnyNode, segment: string | number): Step | undefined {
  const node = resolveAlias(doc, parent);
  if (isMap(node)) {
    const name = String(segment);
    for (const pair of node.items) {
      if (keyName(pair.key) === name) return { node: pair.value as AnyNode, key: pair.key as AnyNode };
    }
    return undefined;
  }
  if (isSeq(node)) {
    const index = typeof segment === 'number' ? segment : /^\d+$/.test(segment) ? Number(segment) : -1;
    if (index < 0 || index >= node.items.length) return undefined;
    const item = node.items[index];
    // `[a: 1]` holds a pair, which plain data turns into a one-key map.
    if (isPair(item)) return { node: item.key as AnyNode };
    return { node: item as AnyNode };
  }
  return undefined;
}

/** Rejects duplicate keys and keys that are not plain scalars, naming the key path. */
function checkKeys(node: AnyNode, path: KeyPath, at: (offset: number) => SourceLocation): void {
  if (isMap(node)) {
    const seen = new Map<string, number>();
    for (const pair of node.items) {
      const key = pair.key as AnyNode;
      const name = keyName(key);
      const keyOffset = key?.range[0] ?? (pair.value as AnyNode)?.range[0] ?? node.range[0];
      if (name === undefined) {
        throw new ConfigError('a key must be a plain name (a string or a number)', path, at(keyOffset));
      }
      const first = seen.get(name);
      if (first !== undefined) {
        const { line, column } = at(first);
        const problem = `duplicate key '${displayText(name, 40)}' (first defined at line ${line}:${column})`;
        throw new ConfigError(problem, [...path, name], at(keyOffset));
      }
      seen.set(name, keyOffset);
      checkKeys(pair.value as AnyNode, [...path, name], at);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, index) => {
      checkKeys(item as AnyNode, [...path, index], at);
    });
  }
}

const INDENT_HINT = ' (check the indentation of this line and the lines around it)';

function syntaxError(
  error: YAMLError,
  doc: Document.Parsed,
  text: string,
  at: (offset: number) => SourceLocation,
): ConfigError {
  const offset = error.pos[0];
  const unclosed = findUnclosedFlow(doc.contents, text, []);
  if (unclosed !== undefined && /^Flow (sequence|map)/.test(error.message)) {
    const [open, close] = unclosed.kind === 'seq' ? ['[', ']'] : ['{', '}'];
    const problem = `YAML syntax error: '${open}' is never closed with '${close}'`;
    return new ConfigError(problem, unclosed.path, at(unclosed.offset));
  }
  let message = error.message.split('\n')[0] ?? error.message;
  if (error.code === 'MULTIPLE_DOCS') message = "a config file holds one YAML document (remove the '---' separator)";
  else if (['BAD_INDENT', 'BLOCK_AS_IMPLICIT_KEY', 'MULTILINE_IMPLICIT_KEY'].includes(error.code)) {
    message += INDENT_HINT;
  }
  return new ConfigError(`YAML syntax error: ${message}`, pathAtOffset(doc.contents, offset, []), at(offset));
}

/** The deepest key path whose key or value spans `offset`, for errors the parser reports by position. */
function pathAtOffset(node: AnyNode, offset: number, path: KeyPath): KeyPath {
  const spans = (n: AnyNode): boolean => n != null && n.range[0] <= offset && offset < n.range[2];
  if (isMap(node)) {
    for (const pair of node.items) {
      const value = pair.value as AnyNode;
      const name = keyName(pair.key);
      if (name === undefined) continue;
      // Only values: a key that spans the error is often text the parser mistook for a key.
      if (spans(value)) return pathAtOffset(value, offset, [...path, name]);
    }
  } else if (isSeq(node)) {
    for (const [index, item] of node.items.entries()) {
      if (spans(item as AnyNode)) return pathAtOffset(item as AnyNode, offset, [...path, index]);
    }
  }
  return path;
}

/** The first flow collection (`[...]`, `{...}`) whose closing bracket is missing. */
function findUnclosedFlow(
  node: AnyNode,
  text: string,
  path: KeyPath,
): { kind: 'seq' | 'map'; offset: number; path: KeyPath } | undefined {
  if (isCollection(node) && node.flow) {
    const source = text.slice(node.range[0], node.range[1]).trimEnd();
    const close = isSeq(node) ? ']' : '}';
    if (!source.endsWith(close)) return { kind: isSeq(node) ? 'seq' : 'map', offset: node.range[0], path };
  }
  if (isMap(node)) {
    for (const pair of node.items) {
      const name = keyName(pair.key);
      const found = findUnclosedFlow(pair.value as AnyNode, text, [...path, name ?? '?']);
      if (found) return found;
    }
  } else if (isSeq(node)) {
    for (const [index, item] of node.items.entries()) {
      const found = findUnclosedFlow(item as AnyNode, text, [...path, index]);
      if (found) return found;
    }
  }
  return undefined;
}
