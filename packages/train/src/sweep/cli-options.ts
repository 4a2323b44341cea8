import { InterleaveError } from '@interleave/core';

/** A flag's value as a whole number ≥ 1, or a one-line error naming the flag. */
export function positiveInteger(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1)
    throw new InterleaveError(`${flag} needs a whole number ≥ 1, not '${text}'`);
  return value;
}
