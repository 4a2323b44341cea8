import { type ParseArgsConfig, parseArgs } from 'node:util';
import { InterleaveError } from '@interleave/core';

/** One `interleave <name>` subcommand: its usage lines and what it does (returns the exit code). */
export interface Command {
  readonly name: string;
  /** Usage and option lines for `interleave help`, already indented. */
  readonly usage: string;
  run(args: string[]): Promise<number>;
}

/** node:util's parser throws TypeErrors for unknown flags; they are the user's mistake, not ours. */
export function parseCommandLine<const T extends ParseArgsConfig['options']>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new InterleaveError(error instanceof Error ? error.message : String(error));
  }
}
