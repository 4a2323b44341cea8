import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Runs once before `pnpm test`: the webgpu tests need a WebGPU device, which on a machine without
 * a GPU is Dawn's OpenGL backend over Mesa's llvmpipe, plus a Vulkan loader with lavapipe for the
 * quiet-`auto` test — Debian packages. As the MLflow and Redis tests fetch theirs from PyPI, the
 * suite installs these itself (scripts/install-webgpu-ci.sh: only what is missing, apt-get as
 * root), so the README's test command is the whole set-up. Where it cannot (not Debian, not
 * root), it says so in one line and those tests fail with a line naming the packages.
 */
export default function installWebgpuTestPackages(): void {
  const script = fileURLToPath(new URL('../../../scripts/install-webgpu-ci.sh', import.meta.url));
  if (process.platform !== 'linux' || !existsSync('/usr/bin/dpkg-query')) {
    console.warn('webgpu tests: not a Debian-based Linux; install Mesa EGL/llvmpipe and a Vulkan loader yourself');
    return;
  }
  try {
    execFileSync('bash', [script], { stdio: ['ignore', 'inherit', 'inherit'], env: process.env });
  } catch {
    const who = process.getuid?.() === 0 ? '' : ' (it needs root for apt-get)';
    console.warn(`webgpu tests: ${script} could not install the Mesa/Vulkan packages${who}`);
  }
}
