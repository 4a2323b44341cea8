import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface AtomicWriteOptions {
  /**
   * Where the temporary file is written (default: beside the target). It must be on the same
   * file system as the target; choose another folder when every file in the target's folder
   * has a meaning to its readers, so that a leftover from a crash is never mistaken for data.
   */
  readonly temporaryDirectory?: string;
}

/**
 * Writes a file so that a reader (or a crash) never sees it half-written: the data goes to a
 * temporary file, which is then renamed over the target.
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  options: AtomicWriteOptions = {},
): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const unique = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const temporary =
    options.temporaryDirectory === undefined
      ? `${path}.tmp-${unique}`
      : join(options.temporaryDirectory, `.${basename(path)}-${unique}.tmp`);
  try {
    await writeFile(temporary, data);
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    // A failed write(2) names no file; the error should name the one the caller asked for.
    const failure = error as NodeJS.ErrnoException;
    if (failure.code !== undefined && failure.path === undefined) failure.path = path;
    throw error;
  }
}
