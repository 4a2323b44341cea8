import type { SeededRandom } from '@interleave/core';
import { isMap, parseDocument, stringify } from 'yaml';

/**
 * A seeded mutator of YAML config text for the config fuzz test: each mutant is one config with
 * one or two hostile edits, chosen and filled in by `rng` alone, so a seed and an index name a
 * mutant exactly (the test prints both for any mutant that misbehaves).
 */

/** One mutant: the edited text and what was done to it (for the failure report). */
export interface Mutant {
  readonly text: string;
  readonly edits: readonly string[];
}

type Path = Array<string | number>;

/** A value of some other type than the one a key held, including the edge cases of each type. */
function hostileValue(rng: SeededRandom): unknown {
  const pick = rng.int(16);
  switch (pick) {
    case 0:
      return outOfRangeNumber(rng);
    case 1:
      return hostileString(rng);
    case 2:
      return rng.next() < 0.5;
    case 3:
      return null;
    case 4:
      return [];
    case 5:
      return {};
    case 6:
      return [hostileString(rng), outOfRangeNumber(rng)];
    case 7:
      return { [hostileString(rng).slice(0, 40) || 'k']: outOfRangeNumber(rng) };
    case 8:
      return deeplyNested(rng, 1 + rng.int(40));
    case 9:
      return String(outOfRangeNumber(rng));
    case 10:
      return '';
    case 11:
      return rng.int(1000);
    case 12:
      return -rng.int(1000);
    case 13:
      return 'true';
    case 14:
      return ['mamba', 'swa', 'attention', 'mqar', 'induction', 'adamw', 'cosine', 'grid'][rng.int(8)];
    default:
      return rng.uniform(-10, 10);
  }
}

const EDGE_NUMBERS = [
  0,
  -1,
  -0,
  1e308,
  -1e308,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  Number.NaN,
  2 ** 53 + 1,
  -(2 ** 31),
  2 ** 32,
  5e-324,
  1e-320,
  0.5,
  1.5,
  1e21,
  123456789012,
];

function outOfRangeNumber(rng: SeededRandom): number {
  return EDGE_NUMBERS[rng.int(EDGE_NUMBERS.length)] as number;
}

const UNICODE_PIECES = [
  'é',
  '日本語',
  '🧪',
  '\u200b',
  '\u202e',
  '\u0000',
  '\ufeff',
  '\ud800',
  '\t',
  '\r\n',
  '"',
  "'",
  ': ',
  '#',
  '&a',
  '*a',
  '!!js/function',
  '<script>',
  '%',
  '@',
  '`',
  '{',
  ']',
  '\\',
];

function hostileString(rng: SeededRandom): string {
  if (rng.next() < 0.15) return 'x'.repeat(10_000 + rng.int(200_000));
  let out = '';
  const pieces = 1 + rng.int(6);
  for (let i = 0; i < pieces; i++) out += UNICODE_PIECES[rng.int(UNICODE_PIECES.length)];
  return out;
}

function deeplyNested(rng: SeededRandom, depth: number): unknown {
  let value: unknown = outOfRangeNumber(rng);
  for (let i = 0; i < depth; i++) value = rng.next() < 0.5 ? [value] : { [`k${i}`]: value };
  return value;
}

/** Every path to a map key or list item in `data`, parents before children. */
function allPaths(data: unknown, prefix: Path = [], out: Path[] = []): Path[] {
  if (Array.isArray(data)) {
    data.forEach((item, index) => {
      out.push([...prefix, index]);
      allPaths(item, [...prefix, index], out);
    });
  } else if (data !== null && typeof data === 'object' && Object.getPrototypeOf(data) === Object.prototype) {
    // Only plain maps: a tag such as !!binary or !!set gives a Uint8Array or Set, which are leaves here.
    for (const [key, value] of Object.entries(data)) {
      out.push([...prefix, key]);
      allPaths(value, [...prefix, key], out);
    }
  }
  return out;
}

function parentOf(data: unknown, path: Path): Record<string | number, unknown> {
  let current = data as Record<string | number, unknown>;
  for (const segment of path.slice(0, -1)) current = current[segment] as Record<string | number, unknown>;
  return current;
}

/** Edits on the data: the mutated document is written back as YAML. */
const DATA_EDITS: Record<string, (data: unknown, path: Path, rng: SeededRandom) => void> = {
  drop(data, path) {
    const parent = parentOf(data, path);
    const last = path[path.length - 1] as string | number;
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete parent[last];
  },
  retype(data, path, rng) {
    parentOf(data, path)[path[path.length - 1] as string | number] = hostileValue(rng);
  },
  rename(data, path, rng) {
    const parent = parentOf(data, path);
    const last = path[path.length - 1] as string | number;
    if (Array.isArray(parent)) return;
    const value = parent[last];
    delete parent[last];
    const names = [String(last).toUpperCase(), `${String(last)}_`, '', '0', hostileString(rng), 'extends', '__proto__'];
    parent[names[rng.int(names.length)] as string] = value;
  },
  wrap(data, path, rng) {
    const parent = parentOf(data, path);
    const last = path[path.length - 1] as string | number;
    parent[last] = rng.next() < 0.5 ? [parent[last]] : { value: parent[last] };
  },
  nest(data, path, rng) {
    parentOf(data, path)[path[path.length - 1] as string | number] = deeplyNested(rng, 10 + rng.int(60));
  },
};

/** Edits on the text, for what the data cannot hold: duplicate keys, syntax, anchors, sheer depth. */
const TEXT_EDITS: Record<string, (text: string, rng: SeededRandom) => string> = {
  duplicateLine(text, rng) {
    const lines = text.split('\n');
    const at = rng.int(lines.length);
    lines.splice(at, 0, lines[at] ?? '');
    return lines.join('\n');
  },
  dropLine(text, rng) {
    const lines = text.split('\n');
    lines.splice(rng.int(lines.length), 1);
    return lines.join('\n');
  },
  reindent(text, rng) {
    const lines = text.split('\n');
    const at = rng.int(lines.length);
    lines[at] = rng.next() < 0.5 ? ` ${lines[at]}` : (lines[at] ?? '').replace(/^ {1,2}/, '');
    return lines.join('\n');
  },
  insertCharacter(text, rng) {
    const characters = [':', '-', '[', '{', '}', ']', '"', "'", '&', '*', '!', '|', '>', '\t', '\u0000', '%', '@', '?'];
    const at = rng.int(text.length + 1);
    return text.slice(0, at) + characters[rng.int(characters.length)] + text.slice(at);
  },
  truncate(text, rng) {
    return text.slice(0, rng.int(text.length + 1));
  },
  flowNesting(text, rng) {
    const depth = 100 + rng.int(20_000);
    const [open, close] = rng.next() < 0.5 ? ['[', ']'] : ['{a: ', '}'];
    return `${text}\nnested: ${open.repeat(depth)}1${close.repeat(depth)}\n`;
  },
  blockNesting(text, rng) {
    const depth = 100 + rng.int(3_000);
    let nested = '\nnested:\n';
    for (let i = 1; i <= depth; i++) nested += `${' '.repeat(i)}k${i}:\n`;
    return `${text}${nested}${' '.repeat(depth + 1)}end\n`;
  },
  aliasBomb(text, rng) {
    // Billion laughs: each level lists the previous one ten times.
    const levels = 3 + rng.int(8);
    let bomb = 'lol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n';
    for (let level = 1; level <= levels; level++) {
      const previous = Array.from({ length: 10 }, () => `*l${level - 1}`).join(', ');
      bomb += `lol${level}: &l${level} [${previous}]\n`;
    }
    const placement = rng.int(3);
    if (placement === 0) return `${bomb}${text}`;
    if (placement === 1) return `${text}\n${bomb}`;
    // Under a key the loader reads, so the expansion would reach validation.
    return `${bomb}${text.replace(/^name:.*$/m, `name: *l${levels}`)}`;
  },
  anchorReuse(text) {
    // Anchors and aliases used as intended: must still load (or fail on content, not on form).
    return text.replace(/^train:\n/m, 'train: &training\n').concat('\nshadow: *training\n');
  },
  mergeKey(text) {
    return text.replace(/^model:\n/m, 'model:\n  <<: {d_model: 8}\n');
  },
  customTag(text, rng) {
    const tags = ['!!js/function', '!!binary', '!!set', '!!omap', '!custom', '!!timestamp', '!!float', '!!int'];
    return text.replace(/^(name:) /m, `$1 ${tags[rng.int(tags.length)]} `);
  },
  bom(text) {
    return `\ufeff${text}`;
  },
  secondDocument(text) {
    return `${text}\n---\nname: other\n`;
  },
};

/**
 * One mutant of `source` (a config's YAML text): one or two edits, each chosen by `rng` among
 * the data edits (applied to a random key path) and the text edits.
 */
export function mutateConfig(source: string, rng: SeededRandom): Mutant {
  const edits: string[] = [];
  let text = source;
  const count = 1 + (rng.next() < 0.3 ? 1 : 0);
  for (let i = 0; i < count; i++) {
    if (rng.next() < 0.55) {
      const data = plainData(text);
      if (data === undefined) {
        text = applyTextEdit(text, rng, edits);
        continue;
      }
      const paths = allPaths(data);
      const path = paths[rng.int(paths.length)];
      const names = Object.keys(DATA_EDITS);
      const name = names[rng.int(names.length)] as string;
      if (path === undefined) continue;
      (DATA_EDITS[name] as (data: unknown, path: Path, rng: SeededRandom) => void)(data, path, rng);
      edits.push(`${name} ${path.join('.')}`);
      try {
        text = stringify(data, { aliasDuplicateObjects: false, lineWidth: 0 });
      } catch {
        // Too deep for yaml's writer: the text edits below reach such depths instead.
        text = applyTextEdit(text, rng, edits);
      }
    } else {
      text = applyTextEdit(text, rng, edits);
    }
  }
  return { text, edits };
}

/** The text as plain data, when it is a well-formed YAML map (earlier edits may have broken it). */
function plainData(text: string): Record<string, unknown> | undefined {
  const doc = parseDocument(text);
  if (doc.errors.length > 0 || !isMap(doc.contents)) return undefined;
  try {
    return doc.toJS({ maxAliasCount: 100 }) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

function applyTextEdit(text: string, rng: SeededRandom, edits: string[]): string {
  const names = Object.keys(TEXT_EDITS);
  const name = names[rng.int(names.length)] as string;
  edits.push(name);
  return (TEXT_EDITS[name] as (text: string, rng: SeededRandom) => string)(text, rng);
}
