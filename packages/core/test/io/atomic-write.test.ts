import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../src/io/atomic-write.js';

let folder: string;
beforeEach(async () => {
  folder = await mkdtemp(join(tmpdir(), 'interleave-atomic-'));
});
afterEach(async () => {
  await rm(folder, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('creates missing folders, replaces an existing file and leaves no temporary file behind', async () => {
    const path = join(folder, 'a', 'b', 'value.txt');
    await writeFileAtomic(path, 'first');
    await writeFileAtomic(path, new TextEncoder().encode('second'));
    expect(await readFile(path, 'utf8')).toBe('second');
    expect(await readdir(join(folder, 'a', 'b'))).toEqual(['value.txt']);
  });

  it('writes its temporary file where it is told, so the target folder only ever holds finished files', async () => {
    const tags = join(folder, 'run', 'tags');
    await mkdir(tags, { recursive: true });
    await writeFileAtomic(join(tags, 'note'), 'kept', { temporaryDirectory: join(folder, 'run') });
    expect(await readdir(tags)).toEqual(['note']);
    expect(await readdir(join(folder, 'run'))).toEqual(['tags']);
  });

  it('removes its temporary file when the rename fails', async () => {
    // A folder stands where the file should go: the rename over it fails.
    const target = join(folder, 'occupied');
    await mkdir(join(target, 'inside'), { recursive: true });
    const spare = join(folder, 'spare');
    await mkdir(spare);
    await expect(writeFileAtomic(target, 'x')).rejects.toThrow();
    await expect(writeFileAtomic(target, 'x', { temporaryDirectory: spare })).rejects.toThrow();
    expect((await readdir(folder)).sort()).toEqual(['occupied', 'spare']);
    expect(await readdir(spare)).toEqual([]);
  });
});
