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
import {
  buildAddon,
  installDeps,
  isSetUp,
  loadedTensorflowVersion,
  protectFromReinstall,
  setupStamp,
  tfjsNodePackage,
} from './tensorflow/addon.mjs';
import {
  checkPlatform,
  GIB,
  requireCompiler,
  requireFreeDisk,
  requireNodeHeaders,
  requirePythonPip,
  SetupError,
  say,
} from './tensorflow/checks.mjs';
import { cacheDirectory, fillCache, isCacheComplete, TENSORFLOW_WHEEL } from './tensorflow/wheel-cache.mjs';

// Measured: wheel 0.27 GB, unstripped libraries 0.85 GB, stripped 0.63 GB; one library is
// stripped at a time, after the wheel is deleted.
const DISK_NEEDED_TO_DOWNLOAD = 1.5 * GIB;

const started = performance.now();

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

function seconds() {
  return `${((performance.now() - started) / 1000).toFixed(1)} s`;
}

function firstLine(error) {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0] ?? message;
}
