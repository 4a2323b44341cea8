import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { BackendRequest } from '../config/schema.js';
import { InterleaveError } from '../errors.js';
import { limitWebgpuBufferPool } from './webgpu-buffer-pool.js';
import { findGpuDevice, findSoftwareDevice, installNavigatorGpu } from './webgpu-device.js';
import { watchWebgpuFailures } from './webgpu-failures.js';
import { checkMatmulEnvironment, installWebgpuMatmul } from './webgpu-matmul.js';
import { trackWebgpuMemory } from './webgpu-memory.js';
import { reduceWebgpuPerOpCost } from './webgpu-per-op.js';

export type BackendName = Exclude<BackendRequest, 'auto'>;

/** The backend a run uses, and why each better one was passed over. */
export interface BackendChoice {
  readonly name: BackendName;
  /** e.g. `wasm (SIMD, 1 thread)` or `tensorflow (@tensorflow/tfjs-node)`. */
  readonly detail: string;
  /** One line per backend tried before this one: `webgpu: no GPU adapter found`. */
  readonly skipped: readonly string[];
}

type Attempt = { ok: true; detail: string } | { ok: false; reason: string };

const AUTO_ORDER: readonly BackendName[] = ['tensorflow', 'webgpu', 'wasm', 'cpu'];
const require = createRequire(import.meta.url);

/**
 * Initialises tfjs on the requested backend. `auto` takes the first that works, in the order
 * of docs/design.md#backends; naming a backend that cannot start is an error, never a silent fallback.
 * `requestedBy` says where the request came from, for the error message.
 */
export async function selectBackend(request: BackendRequest, requestedBy = 'backend'): Promise<BackendChoice> {
  const candidates = request === 'auto' ? autoOrder() : [request];
  const skipped: string[] = [];
  const disabled = backendNamesFromEnvironment('INTERLEAVE_DISABLE_BACKENDS');
  checkMatmulEnvironment();
  for (const name of candidates) {
    const attempt = disabled.includes(name)
      ? fail(`switched off by INTERLEAVE_DISABLE_BACKENDS=${process.env.INTERLEAVE_DISABLE_BACKENDS}`)
      : await ATTEMPTS[name](request !== 'auto');
    if (attempt.ok) {
      await tf.ready();
      return { name, detail: attempt.detail, skipped };
    }
    skipped.push(`${name}: ${attempt.reason}`);
    // `auto` passes over backends quietly; why, on request (a named backend's failure is the error).
    if (request === 'auto' && debugRequested()) process.stderr.write(`backend: skipped ${name}: ${attempt.reason}\n`);
  }
  if (request === 'auto') {
    throw new InterleaveError(`no tfjs backend could start (${skipped.join('; ')})`);
  }
  throw new InterleaveError(`${requestedBy} asks for backend '${request}', which is not available here: ${skipped[0]}`);
}

/**
 * The backends `auto` tries, in order, less those `INTERLEAVE_AUTO_SKIP` names (comma-separated):
 * e.g. to keep `auto` off a native TensorFlow build on one machine without naming a backend in
 * every config, or for a test of what `auto` does after the backends before it.
 */
function autoOrder(): readonly BackendName[] {
  const skip = backendNamesFromEnvironment('INTERLEAVE_AUTO_SKIP');
  return AUTO_ORDER.filter((name) => !skip.includes(name));
}

/**
 * The comma-separated backend names of an environment variable, each checked. Besides
 * INTERLEAVE_AUTO_SKIP, `INTERLEAVE_DISABLE_BACKENDS` names backends that never start here, even
 * when a config names one (which then fails as any unavailable backend does): e.g. to keep every
 * run on a machine off a broken native build, or for a test of that failure on a machine where
 * every backend is installed.
 */
function backendNamesFromEnvironment(variable: 'INTERLEAVE_AUTO_SKIP' | 'INTERLEAVE_DISABLE_BACKENDS'): string[] {
  const value = process.env[variable] ?? '';
  const names = value
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  const unknown = names.filter((name) => !(AUTO_ORDER as readonly string[]).includes(name));
  if (unknown.length > 0) {
    throw new InterleaveError(
      `${variable}='${value}' names ${unknown.join(', ')}, not one of ${AUTO_ORDER.join(', ')}`,
    );
  }
  return names;
}

/** The backend request from `INTERLEAVE_BACKEND`, if set; it overrides the config. */
export function backendFromEnvironment(): BackendRequest | undefined {
  const value = process.env.INTERLEAVE_BACKEND;
  if (value === undefined || value === '') return undefined;
  const allowed: readonly string[] = [...AUTO_ORDER, 'auto'];
  if (!allowed.includes(value)) {
    throw new InterleaveError(`INTERLEAVE_BACKEND='${value}' is not one of ${allowed.join(', ')}`);
  }
  return value as BackendRequest;
}

/** Each starts its backend; `named` is true when the user asked for it (not `auto`). */
const ATTEMPTS: Record<BackendName, (named: boolean) => Promise<Attempt>> = {
  tensorflow: startTensorflow,
  webgpu: startWebgpu,
  wasm: startWasm,
  cpu: startCpu,
};

async function startCpu(): Promise<Attempt> {
  if (!(await setBackendQuietly('cpu'))) return fail('did not start');
  // The cpu backend greets its first tensor with advice to install tfjs-node; `auto` has
  // already said why that is not in use.
  (tf.backend() as { firstUse?: boolean }).firstUse = false;
  return { ok: true, detail: 'cpu (pure JS)' };
}

async function startTensorflow(): Promise<Attempt> {
  const reasons: string[] = [];
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    // Importing a package whose native addon is missing registers half its kernels and then
    // throws; checking for the addon first keeps the process clean for the next candidate.
    const addon = findNativeAddon(pkg);
    if (addon === undefined) {
      reasons.push(`${pkg} has no native addon (run 'pnpm setup:tensorflow' to build it)`);
      continue;
    }
    try {
      // TensorFlow's C++ logging would greet every run with CPU-feature notes on stderr.
      process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
      await import(pkg);
      if (await setBackendQuietly('tensorflow')) {
        return { ok: true, detail: `tensorflow (${pkg}, TensorFlow ${tensorflowVersion()})` };
      }
      reasons.push(`${pkg} loaded but its backend did not start`);
    } catch (error) {
      reasons.push(`${pkg} failed to load: ${firstLine(error)}`);
    }
  }
  return fail(reasons.join('; '));
}

/** The libtensorflow the addon runs (2.21.0 when built by `pnpm setup:tensorflow`). */
function tensorflowVersion(): string {
  const backend = tf.backend() as { binding?: { TF_Version?: string } };
  return backend.binding?.TF_Version ?? 'unknown version';
}

/** The addon a tfjs-node package loads: built by its install script or by `pnpm setup:tensorflow`. */
function findNativeAddon(pkg: string): string | undefined {
  let root: string;
  try {
    root = dirname(require.resolve(`${pkg}/package.json`));
  } catch {
    return undefined;
  }
  const lib = join(root, 'lib');
  if (!existsSync(lib)) return undefined;
  for (const entry of readdirSync(lib)) {
    const addon = join(lib, entry, 'tfjs_binding.node');
    if (entry.startsWith('napi-v') && existsSync(addon)) return addon;
  }
  return undefined;
}

/**
 * A hardware GPU when there is one; the software device (Dawn OpenGL on llvmpipe) only when
 * `webgpu` was named, never for `auto`: it is for tests and CI, far slower than wasm.
 */
async function startWebgpu(named: boolean): Promise<Attempt> {
  try {
    const hardware = await findGpuDevice();
    let search = hardware;
    if (!hardware.found && named) {
      search = await findSoftwareDevice();
      if (!search.found) return fail(`${hardware.reason}; ${search.reason}`);
    }
    if (!search.found) return fail(search.reason);
    await installNavigatorGpu(search.device);
    await import('@tensorflow/tfjs-backend-webgpu');
    if (!(await setBackendQuietly('webgpu')))
      return fail(`${search.device.detail} was found but tfjs-webgpu did not start`);
    const webgpu = tf.findBackend('webgpu') as unknown as { device: GPUDevice };
    // tfjs computes small ops whose inputs still hold CPU values (weights just restored from a
    // checkpoint, say) on the CPU, which rounds differently from the GPU: a model would then give
    // different bits depending on where its weights came from. Every op runs on the GPU instead.
    tf.env().set('WEBGPU_CPU_FORWARD', false);
    watchWebgpuFailures(webgpu);
    limitWebgpuBufferPool(tf.backend());
    reduceWebgpuPerOpCost(webgpu);
    installWebgpuMatmul();
    trackWebgpuMemory(webgpu.device);
    // Named, and given the software device: say once why there was no GPU.
    if (!hardware.found && !toldNoGpu)
      process.stderr.write(`backend: webgpu found no GPU (${hardware.reason}); using the software device\n`);
    toldNoGpu ||= !hardware.found;
    return { ok: true, detail: search.device.detail };
  } catch (error) {
    return fail(`failed to start: ${firstLine(error)}`);
  }
}

let toldNoGpu = false;

function debugRequested(): boolean {
  const value = process.env.INTERLEAVE_DEBUG;
  return value !== undefined && value !== '' && value !== '0';
}

async function startWasm(): Promise<Attempt> {
  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    if (!(await setBackendQuietly('wasm'))) return fail('did not start');
    return { ok: true, detail: `wasm (${wasm.getThreadsCount()} thread${wasm.getThreadsCount() === 1 ? '' : 's'})` };
  } catch (error) {
    return fail(`failed to load: ${firstLine(error)}`);
  }
}

/** tfjs logs its own warnings when a backend fails to initialise; ours say it better. */
async function setBackendQuietly(name: string): Promise<boolean> {
  const warn = console.warn;
  console.warn = () => {};
  try {
    return await tf.setBackend(name);
  } catch {
    return false;
  } finally {
    console.warn = warn;
  }
}

function fail(reason: string): Attempt {
  return { ok: false, reason };
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0] ?? message;
}
