/**
 * What a bundle's entry does before anything loads a plugin (scripts/pack-gpu.sh).
 *
 * A checkout loads plugins through tsx and the workspace's node_modules; the bundle has neither.
 * So pack-gpu.sh bundles each plugin on its own with `@interleave/core`, `@tensorflow/tfjs` and `zod`
 * left external, and puts small modules of those names in the bundle's node_modules that hand out
 * the instances shared here: a plugin must register into this thread's container and create
 * tensors in this thread's tfjs engine, not in copies of its own. A plugin named by a `.ts` path
 * in a config loads the `.mjs` that pack-gpu.sh compiled beside it. Each thread that loads plugins
 * (the CLI's, a batch worker's) calls this once: globals and loader hooks are per thread.
 */
import { register } from 'node:module';
import * as core from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import * as zod from 'zod';

// Resolves a `.ts` file to the `.mjs` compiled beside it, where there is one.
const precompiledTypeScript = `
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  if (result.url.startsWith('file:') && result.url.endsWith('.ts')) {
    const compiled = result.url.slice(0, -3) + '.mjs';
    if (existsSync(fileURLToPath(compiled))) return { ...result, url: compiled, format: 'module' };
  }
  return result;
}`;

export function sharePluginModules(): void {
  (globalThis as { __interleaveSharedModules?: Record<string, unknown> }).__interleaveSharedModules = {
    '@interleave/core': core,
    '@tensorflow/tfjs': tf,
    zod,
  };
  register(`data:text/javascript,${encodeURIComponent(precompiledTypeScript)}`);
}
