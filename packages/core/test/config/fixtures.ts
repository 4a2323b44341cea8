import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { InterleaveError } from '../../src/errors.js';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** Writes `files` (name → YAML text) into a fresh temp dir, removed after the test; returns the dir. */
export async function writeFixtures(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'interleave-config-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

/** The error a promise rejects with or a function throws (fails when there is none). */
export async function caught(action: () => unknown): Promise<Error> {
  try {
    await action();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error, got none');
}

/** The error must be a one-line InterleaveError (what the CLI prints without a stack trace). */
export function expectOneLine(error: Error): string {
  if (!(error instanceof InterleaveError)) throw new Error(`not an InterleaveError: ${error.stack}`);
  if (error.message.includes('\n')) throw new Error(`message spans lines: ${error.message}`);
  return error.message;
}
