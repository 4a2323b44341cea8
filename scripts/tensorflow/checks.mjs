// The machine checks of `pnpm setup:tensorflow`: each failure is a SetupError whose message is
// the one line the user sees.
import { spawnSync } from 'node:child_process';
import { existsSync, statfsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

export const GIB = 1024 ** 3;

/** A failure the user can act on; its message is printed as the command's only line. */
export class SetupError extends Error {}

export function checkPlatform() {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new SetupError(
      `the native backend is built from PyPI's Linux x86_64 wheel; this is ${process.platform}-${process.arch}, so runs keep using wasm`,
    );
  }
}

export function requireCompiler() {
  for (const compiler of [process.env.CXX, 'c++', 'g++', 'clang++'].filter(Boolean)) {
    if (commandWorks(compiler, ['--version'])) {
      if (!commandWorks('make', ['--version'])) {
        throw new SetupError("no 'make' found: install a C++ toolchain (Debian: apt-get install build-essential)");
      }
      return compiler;
    }
  }
  throw new SetupError(
    'no C++ compiler found (c++, g++ or clang++): install one (Debian: apt-get install build-essential)',
  );
}

/** Node's own headers, so node-gyp never downloads them. */
export function requireNodeHeaders() {
  const prefix = resolve(dirname(process.execPath), '..');
  if (!existsSync(join(prefix, 'include', 'node', 'node_api.h'))) {
    throw new SetupError(
      `Node's headers are not under ${prefix}/include/node (install Node with its headers, e.g. Debian's nodejs or the official tarball)`,
    );
  }
  return prefix;
}

export function requirePythonPip() {
  if (!commandWorks('python3', ['--version'])) {
    throw new SetupError('no python3 found: it is needed (with pip) to download the tensorflow-cpu wheel from PyPI');
  }
  if (!commandWorks('python3', ['-m', 'pip', '--version'])) {
    throw new SetupError(
      'python3 has no pip: install it (Debian: apt-get install python3-pip) to download the tensorflow-cpu wheel',
    );
  }
}

export function requireFreeDisk(path, bytes) {
  let existing = path;
  while (!existsSync(existing)) existing = dirname(existing);
  const stats = statfsSync(existing);
  const free = stats.bavail * stats.bsize;
  if (free < bytes) {
    throw new SetupError(
      `not enough disk: ${(bytes / GIB).toFixed(1)} GB needed, ${(free / GIB).toFixed(1)} GB free at ${existing}`,
    );
  }
}

export function commandWorks(command, args) {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

export function lastLine(text) {
  const lines = (text ?? '').split('\n').filter((line) => line.trim() !== '');
  return lines.at(-1) ?? 'no output';
}

/** A progress line, prefixed like the errors. */
export function say(message) {
  console.log(`setup:tensorflow: ${message}`);
}
