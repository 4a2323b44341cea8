import { type ExecFileException, execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * Finding a WebGPU device for tfjs-webgpu: a real GPU through Dawn (Vulkan underneath), or, where
 * there is none and `webgpu` was asked for by name, Dawn's OpenGL backend over Mesa's llvmpipe in
 * WebGPU compatibility mode: a CPU-only device that checks correctness in tests and CI, never speed.
 */

/** How the webgpu backend reaches its adapter: what `navigator.gpu` must be for tfjs. */
export interface WebgpuDevice {
  /** The object tfjs-webgpu sees as `navigator.gpu`. */
  readonly gpu: GPU;
  /** e.g. `webgpu (Dawn, NVIDIA H200)` or `webgpu (Dawn OpenGL on llvmpipe, compatibility mode: ...)`. */
  readonly detail: string;
  /** True for the llvmpipe device: compatibility-mode limits, CPU speed. */
  readonly software: boolean;
}

export type DeviceSearch = { found: true; device: WebgpuDevice } | { found: false; reason: string };

/** What tells a user (or CI) how to get the software device. */
export const SOFTWARE_WEBGPU_INSTALL_HINT =
  'run scripts/install-webgpu-ci.sh (Debian: apt-get install libegl-mesa0 libegl1 libgles2 libgl1-mesa-dri)';

const require = createRequire(import.meta.url);

/**
 * Looks for a hardware GPU. Dawn writes its adapter warnings (with native stack lines) straight to
 * file descriptor 2, where JavaScript cannot silence them, so the first look happens in a child
 * process whose stderr we keep; only a GPU that the child found is opened in this process.
 */
export function findGpuDevice(): Promise<DeviceSearch> {
  gpuSearch ??= searchGpu();
  return gpuSearch;
}

/**
 * Dawn instance flags from `INTERLEAVE_DAWN_FLAGS` (separated by spaces), for profiling on a GPU,
 * e.g. `enable-dawn-features=allow_unsafe_apis` lets tfjs's profiler use timestamp queries.
 */
function dawnFlags(): string[] {
  return (process.env.INTERLEAVE_DAWN_FLAGS ?? '').split(/\s+/).filter((flag) => flag !== '');
}

// Once per process: each look costs a child process, and each Dawn instance repeats its warnings.
let gpuSearch: Promise<DeviceSearch> | undefined;
let softwareSearch: Promise<DeviceSearch> | undefined;

async function searchGpu(): Promise<DeviceSearch> {
  if (!hasVulkanLoader()) return { found: false, reason: 'no Vulkan loader (libvulkan.so.1) on this machine' };
  const probe = await probeAdapterInChild();
  if (!probe.found) return probe;
  const { create } = await importDawn();
  const gpu = create(dawnFlags());
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (adapter === null)
    return { found: false, reason: 'no GPU adapter found (the probe found one; this process did not)' };
  return { found: true, device: { gpu, detail: `webgpu (Dawn, ${adapterName(adapter)})`, software: false } };
}

/**
 * Dawn's OpenGL backend on Mesa's llvmpipe (EGL without a display). tfjs-webgpu asks for a
 * core-feature adapter, which OpenGL cannot give; the `navigator.gpu` handed to it asks for a
 * compatibility-mode one instead.
 */
export function findSoftwareDevice(): Promise<DeviceSearch> {
  softwareSearch ??= searchSoftware();
  return softwareSearch;
}

async function searchSoftware(): Promise<DeviceSearch> {
  const missing = ['libEGL.so.1', 'libEGL_mesa.so.0', 'libGLESv2.so.2'].filter((lib) => !findLibrary(lib));
  if (missing.length > 0 || !hasMesaSoftwareDriver()) {
    const what = missing.length > 0 ? missing.join(', ') : "Mesa's swrast DRI driver";
    return { found: false, reason: `the software WebGPU device needs ${what}: ${SOFTWARE_WEBGPU_INSTALL_HINT}` };
  }
  // EGL reads this when Dawn opens its display; without it Mesa looks for X11 or Wayland.
  process.env.EGL_PLATFORM ??= 'surfaceless';
  const { create } = await importDawn();
  const dawn = create(['backend=opengl']);
  const compatibilityAdapter = (options?: GPURequestAdapterOptions) =>
    dawn.requestAdapter({ ...options, featureLevel: 'compatibility' } as GPURequestAdapterOptions);
  const adapter = await compatibilityAdapter();
  if (adapter === null) {
    return {
      found: false,
      reason: `Dawn's OpenGL backend found no adapter on llvmpipe: ${SOFTWARE_WEBGPU_INSTALL_HINT}`,
    };
  }
  // tfjs's first request gets the adapter found here: each new one makes Dawn repeat its warnings.
  let unused: GPUAdapter | undefined = adapter;
  const gpu = {
    requestAdapter: async (options?: GPURequestAdapterOptions) => {
      const found = unused ?? (await compatibilityAdapter(options));
      unused = undefined;
      return found === null ? null : markDevices(found);
    },
    getPreferredCanvasFormat: () => dawn.getPreferredCanvasFormat(),
    get wgslLanguageFeatures() {
      return dawn.wgslLanguageFeatures;
    },
  } as GPU;
  const device = (adapter.info as Partial<GPUAdapterInfo> | undefined)?.device ?? '';
  const renderer = device.startsWith('llvmpipe') ? 'llvmpipe' : adapterName(adapter);
  return {
    found: true,
    device: {
      gpu,
      detail: `webgpu (Dawn OpenGL on ${renderer}, compatibility mode: correctness only, slow)`,
      software: true,
    },
  };
}

/** Remembers the devices requested from a software adapter (see webgpuDeviceInfo). */
function markDevices(adapter: GPUAdapter): GPUAdapter {
  const requestDevice = adapter.requestDevice.bind(adapter);
  adapter.requestDevice = async (descriptor?: GPUDeviceDescriptor) => {
    const device = await requestDevice(descriptor);
    softwareDevices.add(device);
    return device;
  };
  return adapter;
}

/** Makes `device.gpu` the `navigator.gpu` tfjs-webgpu will use (Node 20 has no `navigator`). */
export async function installNavigatorGpu(device: WebgpuDevice): Promise<void> {
  const { globals } = await importDawn();
  Object.assign(globalThis, globals);
  Object.defineProperty(globalThis, 'navigator', {
    value: { gpu: device.gpu, userAgent: 'node' },
    configurable: true,
    writable: true,
  });
}

type Dawn = typeof import('webgpu');
let dawn: Promise<Dawn> | undefined;

function importDawn(): Promise<Dawn> {
  dawn ??= import('webgpu');
  return dawn;
}

function adapterName(adapter: GPUAdapter): string {
  const info = adapter.info as Partial<GPUAdapterInfo> | undefined;
  return info?.description || info?.device || info?.vendor || 'GPU';
}

/** The child's program: one JSON line on stdout; Dawn's warnings go to its own stderr. */
const PROBE_PROGRAM = `
const { create } = await import(process.argv[1]);
const adapter = await create([]).requestAdapter({ powerPreference: 'high-performance' });
const info = adapter?.info ?? {};
process.stdout.write(JSON.stringify({ found: adapter !== null, name: info.description || info.device || '' }) + '\\n');
process.exit(0);
`;

const PROBE_TIMEOUT_MS = 60_000;

async function probeAdapterInChild(): Promise<{ found: true } | { found: false; reason: string }> {
  let entry: string;
  try {
    entry = pathToFileURL(require.resolve('webgpu')).href;
  } catch {
    return { found: false, reason: "the 'webgpu' package (Dawn) is not installed" };
  }
  const { stdout, stderr, error } = await new Promise<{
    stdout: string;
    stderr: string;
    error: ExecFileException | null;
  }>((resolve) => {
    execFile(
      process.execPath,
      ['--input-type=module', '-e', PROBE_PROGRAM, entry],
      { timeout: PROBE_TIMEOUT_MS, maxBuffer: 4 * 1024 * 1024 },
      (error, stdout, stderr) => resolve({ stdout, stderr, error }),
    );
  });
  const answer = stdout.split('\n').find((line) => line.startsWith('{'));
  if (answer !== undefined && (JSON.parse(answer) as { found: boolean }).found) return { found: true };
  const dawnSays = firstDawnWarning(stderr);
  if (answer !== undefined) {
    return { found: false, reason: `no usable GPU adapter${dawnSays ? ` (Dawn: ${dawnSays})` : ''}` };
  }
  const why = error?.killed
    ? `timed out after ${PROBE_TIMEOUT_MS / 1000} s`
    : (dawnSays ?? error?.message ?? 'no answer');
  return { found: false, reason: `the GPU probe failed: ${why}` };
}

/**
 * Dawn's first warning, without the `Warning:` prefix and the native stack lines under it. The
 * libraries under Dawn write lines of their own first where the environment lacks something
 * (Mesa: `error: XDG_RUNTIME_DIR is invalid or not set`), so a `Warning:` line wins over them.
 */
export function firstDawnWarning(stderr: string): string | undefined {
  const lines = stderr
    .split('\n')
    .map((text) => text.trim())
    .filter((text) => text !== '' && !text.startsWith('at ') && !text.startsWith('- '));
  const line = lines.find((text) => text.startsWith('Warning:')) ?? lines[0];
  return line?.replace(/^Warning:\s*/, '');
}

const LIBRARY_DIRS = [
  '/usr/lib/x86_64-linux-gnu',
  '/usr/lib/aarch64-linux-gnu',
  '/lib/x86_64-linux-gnu',
  '/usr/lib64',
  '/usr/lib',
  '/usr/local/lib',
];

function findLibrary(name: string): string | undefined {
  const dirs = [...(process.env.LD_LIBRARY_PATH ?? '').split(delimiter).filter(Boolean), ...LIBRARY_DIRS];
  return dirs.map((dir) => join(dir, name)).find((path) => existsSync(path));
}

export function hasVulkanLoader(): boolean {
  return findLibrary('libvulkan.so.1') !== undefined;
}

function hasMesaSoftwareDriver(): boolean {
  const dirs = [...(process.env.LIBGL_DRIVERS_PATH ?? '').split(delimiter).filter(Boolean), ...LIBRARY_DIRS];
  return dirs.some((dir) => existsSync(join(dir, 'dri', 'swrast_dri.so')) || existsSync(join(dir, 'swrast_dri.so')));
}

/**
 * The device the webgpu backend runs on, for kernels and tests that must know its limits: a
 * kernel that needs more than the software device's compatibility-mode limits (e.g. a 2 GiB
 * storage binding) says so, and is checked on a GPU instead. Undefined before webgpu starts.
 */
export function webgpuDeviceInfo(
  backend: unknown,
): { readonly software: boolean; readonly limits: GPUSupportedLimits } | undefined {
  const device = (backend as { device?: GPUDevice } | undefined)?.device;
  if (device === undefined) return undefined;
  return { software: softwareDevices.has(device), limits: device.limits };
}

/** Devices tfjs created on the software adapter (marked when tfjs asks that adapter for one). */
const softwareDevices = new WeakSet<GPUDevice>();
