// tfjs-node's side of `pnpm setup:tensorflow`: deps/ laid out from the cache, the addon built
// with node-gyp, the markers that keep the package's install script from undoing it, and a load
// test in a fresh process.
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GIB, lastLine, requireFreeDisk, SetupError, say } from './checks.mjs';
import { LIBRARIES, TENSORFLOW_WHEEL } from './wheel-cache.mjs';

// The file tfjs-node's install script looks for before it deletes deps/ to download 2.9.1.
const INSTALL_SCRIPT_MARKER = 'libtensorflow.so.2.9.1';
// The N-API version node-pre-gyp builds with --build-latest-napi-version-only and loads from.
const NAPI_VERSION = 8;
const DISK_NEEDED_TO_COPY = 0.7 * GIB;
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** tfjs-node as @interleave/core resolves it (an optional dependency, so it may be absent). */
export function tfjsNodePackage() {
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
export function setupStamp() {
  return {
    wheel: `${TENSORFLOW_WHEEL.name}==${TENSORFLOW_WHEEL.version}`,
    nodeModules: process.versions.modules,
    napi: NAPI_VERSION,
  };
}

export function isSetUp(pkg, stamp) {
  if (![pkg.addon, pkg.customBinary, join(pkg.deps, 'lib', INSTALL_SCRIPT_MARKER)].every(existsSync)) return false;
  try {
    return JSON.stringify(JSON.parse(readFileSync(pkg.stampFile, 'utf8'))) === JSON.stringify(stamp);
  } catch {
    return false;
  }
}

/**
 * deps/ as binding.gyp expects it: headers in include/, and lib/ holding the libraries (hard
 * links into the cache where the filesystem allows) with the names the linker and the install
 * script look for.
 */
export function installDeps(pkg, cache) {
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

export function buildAddon(pkg, compiler, nodeHeaders) {
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
export function protectFromReinstall(pkg, stamp) {
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
export function loadedTensorflowVersion() {
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

function lastErrorLine(text) {
  const lines = (text ?? '').split('\n').filter((line) => /Error/.test(line));
  return lines[0]?.trim() ?? lastLine(text);
}
