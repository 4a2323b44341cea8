import { createRequire } from 'node:module';
import { dirname, isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Container } from 'inversify';
import { ConfigError, type SourceLocation } from '../config/config-error.js';
import { applyPlugin, type Plugin } from './container.js';

/**
 * Imports each `plugins:` entry — a path (relative to the config file that names it) or a
 * package name (resolved from the working directory) — and lets it register its blocks and
 * tasks. The module's default export, or its export `register`, is the plugin function.
 */
export async function loadPlugins(
  container: Container,
  specifiers: readonly string[],
  locate: (index: number) => SourceLocation,
): Promise<void> {
  for (const [index, specifier] of specifiers.entries()) {
    const location = locate(index);
    const keyPath = ['plugins', index];
    let module: Record<string, unknown>;
    try {
      module = (await import(resolveSpecifier(specifier, location))) as Record<string, unknown>;
    } catch (error) {
      const reason = error instanceof Error ? (error.message.split('\n')[0] ?? '') : String(error);
      throw new ConfigError(`cannot load plugin '${specifier}': ${reason}`, keyPath, location);
    }
    const plugin = (typeof module.default === 'function' ? module.default : module.register) as Plugin | undefined;
    if (typeof plugin !== 'function') {
      throw new ConfigError(
        `plugin '${specifier}' exports neither a default function nor 'register'`,
        keyPath,
        location,
      );
    }
    try {
      await applyPlugin(container, plugin);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new ConfigError(`plugin '${specifier}' failed to register: ${reason}`, keyPath, location);
    }
  }
}

function resolveSpecifier(specifier: string, location: SourceLocation): string {
  const isPath = specifier.startsWith('.') || isAbsolute(specifier);
  if (isPath) {
    const base = location.file.startsWith('--set') ? process.cwd() : dirname(resolve(location.file));
    return pathToFileURL(resolve(base, specifier)).href;
  }
  try {
    return pathToFileURL(createRequire(resolve(process.cwd(), 'package.json')).resolve(specifier)).href;
  } catch {
    return specifier;
  }
}
