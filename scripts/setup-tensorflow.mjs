#!/usr/bin/env node
// `pnpm setup:tensorflow`: installs the native TensorFlow backend (@tensorflow/tfjs-node) from the
// libtensorflow inside PyPI's tensorflow-cpu wheel, because the package's own install step
// downloads libtensorflow 2.9.1 and a prebuilt addon from a host that most machines (CI, lab
// clusters) cannot reach. Linux x86_64 only. Idempotent; any failure is one line, and leaves the
// wasm default untouched (the backend is only used once the addon below exists).
//
// Steps: check the machine → fetch the wheel with pip and keep its two stripped libraries and the
// C API headers in a user-level cache (so a fresh clone or CI run does not download again) → lay
// them out in tfjs-node's deps/ the way binding.gyp expects → build the addon with node-gyp
// against Node's own headers → write the markers that keep the package's own install script from
// undoing this (pnpm does not run it, see package.json's pnpm.ignoredBuiltDependencies, but
// `pnpm rebuild` or npm would) → load it in a child process and print its version.
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statfsSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const TENSORFLOW_WHEEL = { name: 'tensorflow-cpu', version: '2.21.0' };
// The wheel is the same library for every CPython; pinning the tag lets any python3 with pip
// fetch it (a 3.14 interpreter has no TensorFlow wheel of its own).
const WHEEL_TAG = ['--platform', 'manylinux_2_27_x86_64', '--python-version', '3.12', '--implementation', 'cp'];
const LIBRARIES = ['libtensorflow_cc.so.2', 'libtensorflow_framework.so.2'];
// What tensorflow/c/c_api.h and tensorflow/c/eager/c_api.h include, as paths under the wheel's
// tensorflow/include/.
const HEADER_PREFIXES = ['tensorflow/c/', 'tensorflow/core/platform/ctstring', 'tsl/platform/ctstring', 'xla/tsl/c/'];
// The file tfjs-node's install script looks for before it deletes deps/ to download 2.9.1.
const INSTALL_SCRIPT_MARKER = 'libtensorflow.so.2.9.1';
// The N-API version node-pre-gyp builds with --build-latest-napi-version-only and loads from.
const NAPI_VERSION = 8;
const GIB = 1024 ** 3;
// Measured: wheel 0.27 GB, unstripped libraries 0.85 GB, stripped 0.63 GB; one library is
// stripped at a time, after the wheel is deleted.
const DISK_NEEDED_TO_DOWNLOAD = 1.5 * GIB;
const DISK_NEEDED_TO_COPY = 0.7 * GIB;

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const started = performance.now();

class SetupError extends Error {}

try {
  main();
} catch (error) {
  const message = error instanceof SetupError ? error.message : `unexpected failure: ${firstLine(error)}`;
  console.error(`setup:tensorflow: ${message}`);
  process.exit(1);
}

function main() {
  checkPlatform();
  const pkg = tfjsNodePackage();
  const stamp = setupStamp();
  if (isSetUp(pkg, stamp)) {
    try {
      const version = loadedTensorflowVersion();
      say(`already set up: ${pkg.name} runs TensorFlow ${version} (${seconds()})`);
      return;
    } catch (error) {
      say(`set up before, but it no longer loads (${firstLine(error)}): building it again`);
    }
  }
  const compiler = requireCompiler();
  const nodeHeaders = requireNodeHeaders();
  const cache = cacheDirectory();
  if (!isCacheComplete(cache)) {
    requirePythonPip();
    requireFreeDisk(cache, DISK_NEEDED_TO_DOWNLOAD);
    fillCache(cache);
  } else {
    say(`using the cached ${TENSORFLOW_WHEEL.name} ${TENSORFLOW_WHEEL.version} libraries in ${cache}`);
  }
  installDeps(pkg, cache);
  buildAddon(pkg, compiler, nodeHeaders);
  protectFromReinstall(pkg, stamp);
  const version = loadedTensorflowVersion();
  say(`done: ${pkg.name} runs TensorFlow ${version}; 'backend: auto' now picks 'tensorflow' (${seconds()})`);
}

function checkPlatform() {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new SetupError(
      `the native backend is built from PyPI's Linux x86_64 wheel; this is ${process.platform}-${process.arch}, so runs keep using wasm`,
    );
  }
}

/** tfjs-node as @interleave/core resolves it (an optional dependency, so it may be absent). */
function tfjsNodePackage() {
  const require = createRequire(join(repoRoot, 'packages/core/package.json'));
  let manifest;
  try {
    manifest = require.resolve('@tensorflow/tfjs-node/package.json');
  } catch {
    throw new SetupError("@tensorflow/tfjs-node is not installed: run 'npx -y pnpm@10.34.9 install' first");
  }
  const root = dirname(manifest);
  const { name, version } = JSON.parse(readFileSync(manifest, 'utf8'));
  return {
    name: `${name}@${version}`,
    root,
    deps: join(root, 'deps'),
    addon: join(root, 'lib', `napi-v${NAPI_VERSION}`, 'tfjs_binding.node'),
    customBinary: join(root, 'scripts', 'custom-binary.json'),
    stampFile: join(root, 'deps', 'interleave-setup.json'),
  };
}

/** What the addon was built from; a change (another Node, another wheel) means building again. */
function setupStamp() {
  return {
    wheel: `${TENSORFLOW_WHEEL.name}==${TENSORFLOW_WHEEL.version}`,
    nodeModules: process.versions.modules,
    napi: NAPI_VERSION,
  };
}

function isSetUp(pkg, stamp) {
  if (![pkg.addon, pkg.customBinary, join(pkg.deps, 'lib', INSTALL_SCRIPT_MARKER)].every(existsSync)) return false;
  try {
    return JSON.stringify(JSON.parse(readFileSync(pkg.stampFile, 'utf8'))) === JSON.stringify(stamp);
  } catch {
    return false;
  }
}

function requireCompiler() {
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
function requireNodeHeaders() {
  const prefix = resolve(dirname(process.execPath), '..');
  if (!existsSync(join(prefix, 'include', 'node', 'node_api.h'))) {
    throw new SetupError(
      `Node's headers are not under ${prefix}/include/node (install Node with its headers, e.g. Debian's nodejs or the official tarball)`,
    );
  }
  return prefix;
}

function requirePythonPip() {
  if (!commandWorks('python3', ['--version'])) {
    throw new SetupError('no python3 found: it is needed (with pip) to download the tensorflow-cpu wheel from PyPI');
  }
  if (!commandWorks('python3', ['-m', 'pip', '--version'])) {
    throw new SetupError(
      'python3 has no pip: install it (Debian: apt-get install python3-pip) to download the tensorflow-cpu wheel',
    );
  }
}

function requireFreeDisk(path, bytes) {
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

/** The stripped libraries and headers, shared by every checkout of this user. */
function cacheDirectory() {
  const base =
    process.env.INTERLEAVE_TENSORFLOW_CACHE ||
    join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'interleave');
  return join(base, `${TENSORFLOW_WHEEL.name}-${TENSORFLOW_WHEEL.version}`);
}

function isCacheComplete(cache) {
  return existsSync(join(cache, 'complete'));
}

function fillCache(cache) {
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

/**
 * deps/ as binding.gyp expects it: headers in include/, and lib/ holding the libraries (hard
 * links into the cache where the filesystem allows) with the names the linker and the install
 * script look for.
 */
function installDeps(pkg, cache) {
  // Until the new addon loads, nothing may look installed: `auto` then passes tensorflow by.
  for (const stale of [pkg.addon, pkg.customBinary, pkg.deps]) rmSync(stale, { recursive: true, force: true });
  const lib = join(pkg.deps, 'lib');
  mkdirSync(lib, { recursive: true });
  let copied = false;
  for (const library of LIBRARIES) {
    try {
      linkSync(join(cache, 'lib', library), join(lib, library));
    } catch {
      if (!copied) requireFreeDisk(pkg.deps, DISK_NEEDED_TO_COPY);
      copied = true;
      copyFileSync(join(cache, 'lib', library), join(lib, library));
    }
  }
  // binding.gyp links -ltensorflow -ltensorflow_framework; the C and eager APIs live in _cc.
  symlinkSync('libtensorflow_cc.so.2', join(lib, 'libtensorflow.so'));
  symlinkSync('libtensorflow_framework.so.2', join(lib, 'libtensorflow_framework.so'));
  symlinkSync('libtensorflow_cc.so.2', join(lib, INSTALL_SCRIPT_MARKER));
  cpSync(join(cache, 'include'), join(pkg.deps, 'include'), { recursive: true });
}

function buildAddon(pkg, compiler, nodeHeaders) {
  const nodeGyp = npmBundledNodeGyp();
  say(`building the addon with node-gyp against ${nodeHeaders}/include/node (about 20 s)`);
  const nodePreGyp = join(
    dirname(createRequire(join(pkg.root, 'package.json')).resolve('@mapbox/node-pre-gyp/package.json')),
    'bin',
    'node-pre-gyp',
  );
  const build = spawnSync(
    process.execPath,
    [nodePreGyp, 'rebuild', '--build-latest-napi-version-only', `--nodedir=${nodeHeaders}`],
    {
      cwd: pkg.root,
      encoding: 'utf8',
      env: { ...process.env, CXX: compiler, npm_config_node_gyp: nodeGyp, JOBS: 'max' },
    },
  );
  if (build.status !== 0 || !existsSync(pkg.addon)) {
    const errorLine =
      (build.stderr + build.stdout).split('\n').find((line) => /error/i.test(line)) ?? lastLine(build.stderr);
    throw new SetupError(`building the addon failed: ${errorLine.trim()}`);
  }
  // Object files: the addon is copied to lib/.
  rmSync(join(pkg.root, `build-tmp-napi-v${NAPI_VERSION}`), { recursive: true, force: true });
}

/** npm ships node-gyp with Node: under the global npm package, or beside the npm running us. */
function npmBundledNodeGyp() {
  const npmPackages = [];
  if (process.env.npm_execpath) npmPackages.push(resolve(dirname(process.env.npm_execpath), '..'));
  npmPackages.push(resolve(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm'));
  const globalRoot = spawnSync('npm', ['root', '-g'], { encoding: 'utf8' });
  if (globalRoot.status === 0) npmPackages.push(join(globalRoot.stdout.trim(), 'npm'));
  const nodeGyp = npmPackages
    .map((npm) => join(npm, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'))
    .find(existsSync);
  if (nodeGyp === undefined)
    throw new SetupError('node-gyp was not found (it ships with npm): install npm alongside Node');
  return nodeGyp;
}

/**
 * tfjs-node's install script (which pnpm runs again whenever it rebuilds the package) keeps deps/
 * when it finds the marker library, and with an `addon` entry in custom-binary.json it asks
 * node-pre-gyp to install a prebuilt addon, which reports the one built here as already
 * installed. The host is never contacted for that reason; node-pre-gyp only insists on https.
 */
function protectFromReinstall(pkg, stamp) {
  const customBinary = {
    addon: {
      host: 'https://localhost/',
      remote_path: './built-by-interleave-setup-tensorflow/napi-v{napi_build_version}/',
      package_name: 'tfjs_binding.tar.gz',
    },
  };
  writeFileSync(pkg.customBinary, `${JSON.stringify(customBinary, null, 2)}\n`);
  writeFileSync(pkg.stampFile, `${JSON.stringify(stamp, null, 2)}\n`);
}

/** Loads the addon in a fresh process (as a run would) and returns TensorFlow's version. */
function loadedTensorflowVersion() {
  const probe = `
const tf = require('@tensorflow/tfjs-node');
const sum = tf.add(tf.tensor1d([1, 2]), tf.tensor1d([3, 4])).dataSync();
if (tf.getBackend() !== 'tensorflow' || sum[0] !== 4 || sum[1] !== 6) throw new Error('the tensorflow backend computed wrongly');
process.stdout.write(tf.backend().binding.TF_Version);
`;
  const result = spawnSync(process.execPath, ['-e', probe], {
    cwd: join(repoRoot, 'packages/core'),
    encoding: 'utf8',
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' },
  });
  if (result.status !== 0) {
    throw new SetupError(`the addon was built but does not load: ${lastErrorLine(result.stderr)}`);
  }
  return result.stdout.trim();
}

function run(command, args, what) {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new SetupError(`${what} failed: ${lastLine(result.stderr)}`);
}

function commandWorks(command, args) {
  return spawnSync(command, args, { stdio: 'ignore' }).status === 0;
}

function say(message) {
  console.log(`setup:tensorflow: ${message}`);
}

function seconds() {
  return `${((performance.now() - started) / 1000).toFixed(1)} s`;
}

function lastLine(text) {
  const lines = (text ?? '').split('\n').filter((line) => line.trim() !== '');
  return lines.at(-1) ?? 'no output';
}

function lastErrorLine(text) {
  const lines = (text ?? '').split('\n').filter((line) => /Error/.test(line));
  return lines[0]?.trim() ?? lastLine(text);
}

function firstLine(error) {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0] ?? message;
}
