/**
 * An error caused by what the user asked for (a config, a path, a flag) rather than by a bug.
 * The CLI prints its message as one line and exits non-zero, without a stack trace.
 */
export class InterleaveError extends Error {
  override name = 'InterleaveError';
}
