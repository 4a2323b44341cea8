import { readdirSync, statSync } from 'node:fs';
import { isAbsolute, join, matchesGlob, relative, resolve, sep } from 'node:path';
import { InterleaveError } from '@interleave/core';

/** Extensions read as pre-tokenized shards (flat token ids, as nanoGPT's prepare scripts write). */
export const SHARD_EXTENSIONS = ['.bin'] as const;

const GLOB_CHARACTERS = /[*?[{]/;

export function isShardFile(file: string): boolean {
  return SHARD_EXTENSIONS.some((extension) => file.endsWith(extension));
}

/**
 * The files `data` names, sorted so the corpus (and so every split and shuffle) does not depend
 * on directory order: a file; a folder (its `.txt` and `.bin` files, recursively); or a glob
 * such as `data/shakespeare/**\/*.txt`. Relative paths are resolved against `baseDirectory`.
 */
export function resolveCorpusFiles(data: string, baseDirectory: string = process.cwd()): string[] {
  const absolute = isAbsolute(data) ? data : resolve(baseDirectory, data);
  if (!GLOB_CHARACTERS.test(data)) {
    const stats = statOrUndefined(absolute);
    if (stats === undefined) throw new InterleaveError(`task.data: no file or folder ${absolute}`);
    if (stats.isFile()) return [absolute];
    const files = walk(absolute).filter((file) => file.endsWith('.txt') || isShardFile(file));
    if (files.length === 0) throw new InterleaveError(`task.data: folder ${absolute} has no .txt or .bin files`);
    return files;
  }
  const root = globRoot(absolute);
  const files = statOrUndefined(root)?.isDirectory()
    ? walk(root).filter((file) => matchesGlob(relative(root, file), relative(root, absolute)))
    : [];
  if (files.length === 0) throw new InterleaveError(`task.data: no files match ${absolute}`);
  return files;
}

/** The longest leading part of a glob without wildcards: the folder to walk. */
function globRoot(pattern: string): string {
  const parts = pattern.split(sep);
  const firstGlob = parts.findIndex((part) => GLOB_CHARACTERS.test(part));
  return parts.slice(0, firstGlob).join(sep) || sep;
}

function walk(directory: string): string[] {
  const files: string[] = [];
  const entries = readdirSync(directory, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const entry of entries) {
    const path = join(directory, entry.name);
    if (entry.isDirectory()) files.push(...walk(path));
    else if (entry.isFile()) files.push(path);
  }
  return files;
}

function statOrUndefined(path: string): ReturnType<typeof statSync> | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
