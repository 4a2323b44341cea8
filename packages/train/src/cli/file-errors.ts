import { fileErrorReason, InterleaveError } from '@interleave/core';

const ACTIONS: Record<string, string> = {
  write: 'write',
  open: 'open',
  mkdir: 'create the folder',
  rename: 'replace',
  unlink: 'remove',
  read: 'read',
  copyfile: 'copy to',
  scandir: 'list',
};

/**
 * A file-system error that escaped a command (a full disk, a read-only folder) as one line
 * naming the path and the reason, instead of an internal error; undefined for anything else.
 */
export function explainFileError(error: unknown): InterleaveError | undefined {
  if (!(error instanceof Error)) return undefined;
  const { syscall, path } = error as NodeJS.ErrnoException;
  const reason = fileErrorReason(error);
  if (reason === undefined || syscall === undefined) return undefined;
  const where = path === undefined ? '' : ` ${path}`;
  return new InterleaveError(`cannot ${ACTIONS[syscall] ?? syscall}${where}: ${reason}`);
}
