// The tensorflow-cpu wheel from PyPI, reduced to what the addon links and includes, in a
// user-level cache that every checkout (and CI run) of this user shares.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { commandWorks, lastLine, SetupError, say } from './checks.mjs';

export const TENSORFLOW_WHEEL = { name: 'tensorflow-cpu', version: '2.21.0' };
// The wheel is the same library for every CPython; pinning the tag lets any python3 with pip
// fetch it (a 3.14 interpreter has no TensorFlow wheel of its own).
const WHEEL_TAG = ['--platform', 'manylinux_2_27_x86_64', '--python-version', '3.12', '--implementation', 'cp'];
export const LIBRARIES = ['libtensorflow_cc.so.2', 'libtensorflow_framework.so.2'];
// What tensorflow/c/c_api.h and tensorflow/c/eager/c_api.h include, as paths under the wheel's
// tensorflow/include/.
const HEADER_PREFIXES = ['tensorflow/c/', 'tensorflow/core/platform/ctstring', 'tsl/platform/ctstring', 'xla/tsl/c/'];

/** The stripped libraries and headers, shared by every checkout of this user. */
export function cacheDirectory() {
  const base =
    process.env.INTERLEAVE_TENSORFLOW_CACHE ||
    join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'interleave');
  return join(base, `${TENSORFLOW_WHEEL.name}-${TENSORFLOW_WHEEL.version}`);
}

export function isCacheComplete(cache) {
  return existsSync(join(cache, 'complete'));
}

export function fillCache(cache) {
  const staging = `${cache}.partial`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  say(`downloading ${TENSORFLOW_WHEEL.name}==${TENSORFLOW_WHEEL.version} from PyPI with pip (~274 MB)`);
  const download = spawnSync(
    'python3',
    [
      '-m',
      'pip',
      'download',
      '--quiet',
      '--no-deps',
      '--only-binary=:all:',
      ...WHEEL_TAG,
      '--dest',
      staging,
      `${TENSORFLOW_WHEEL.name}==${TENSORFLOW_WHEEL.version}`,
    ],
    { encoding: 'utf8' },
  );
  if (download.status !== 0) {
    throw new SetupError(
      `pip could not download ${TENSORFLOW_WHEEL.name}==${TENSORFLOW_WHEEL.version}: ${lastLine(download.stderr)}`,
    );
  }
  say('extracting libtensorflow and the C API headers');
  // Python's zipfile, since python3 is already required and unzip may not be installed.
  const extractor = `
import glob, os, sys, zipfile
staging, prefixes, libraries = sys.argv[1], sys.argv[2].split(','), sys.argv[3].split(',')
wheel = glob.glob(os.path.join(staging, '*.whl'))[0]
with zipfile.ZipFile(wheel) as archive:
    for name in archive.namelist():
        if name.endswith('/'):
            continue
        if name.startswith('tensorflow/include/'):
            inner = name[len('tensorflow/include/'):]
            if any(inner.startswith(prefix) for prefix in prefixes):
                target = os.path.join(staging, 'include', inner)
            else:
                continue
        elif name.startswith('tensorflow/') and name[len('tensorflow/'):] in libraries:
            target = os.path.join(staging, 'lib', name[len('tensorflow/'):])
        else:
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with archive.open(name) as source, open(target, 'wb') as sink:
            while chunk := source.read(1 << 20):
                sink.write(chunk)
os.remove(wheel)
`;
  run('python3', ['-c', extractor, staging, HEADER_PREFIXES.join(','), LIBRARIES.join(',')], 'extracting the wheel');
  for (const library of LIBRARIES) {
    const path = join(staging, 'lib', library);
    if (!existsSync(path)) throw new SetupError(`the wheel has no tensorflow/${library}`);
    // Debug symbols are a quarter of libtensorflow_cc; nothing here reads them.
    if (commandWorks('strip', ['--version'])) run('strip', ['--strip-unneeded', path], `stripping ${library}`);
  }
  writeFileSync(join(staging, 'complete'), `${TENSORFLOW_WHEEL.name}==${TENSORFLOW_WHEEL.version}\n`);
  rmSync(cache, { recursive: true, force: true });
  renameSync(staging, cache);
}

function run(command, args, what) {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new SetupError(`${what} failed: ${lastLine(result.stderr)}`);
}
