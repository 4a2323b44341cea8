import { accessSync, constants, existsSync } from 'node:fs';
import { dirname } from 'node:path';

/** What each file-system error means to a person running a command. */
const REASONS: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EFBIG: 'file too large (over the file-size limit)',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or folder',
  ENOTDIR: 'a part of the path is a file, not a folder',
  EISDIR: 'it is a folder',
  EMFILE: 'too many open files',
  EIO: 'input/output error',
};

/**
 * The reason a file-system call failed, in words, or undefined for an error that is not one.
 * Node's recursive mkdir reports a read-only or forbidden parent as ENOENT; then the nearest
 * folder that exists is asked for the real reason.
 */
export function fileErrorReason(error: unknown): string | undefined {
  const { code, syscall, path } = (error ?? {}) as NodeJS.ErrnoException;
  if (code === undefined || REASONS[code] === undefined) return undefined;
  if (code !== 'ENOENT' || syscall !== 'mkdir' || path === undefined) return REASONS[code];
  let ancestor = dirname(path);
  while (!existsSync(ancestor) && dirname(ancestor) !== ancestor) ancestor = dirname(ancestor);
  try {
    accessSync(ancestor, constants.W_OK);
  } catch (probe) {
    const probeCode = (probe as NodeJS.ErrnoException).code;
    if (probeCode !== undefined && REASONS[probeCode] !== undefined) return `${REASONS[probeCode]} (${ancestor})`;
  }
  return REASONS[code];
}
