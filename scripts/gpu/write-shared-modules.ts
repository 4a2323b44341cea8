/**
 * Writes <out>/node_modules/<name>/ for each module the GPU bundle's CLI shares with plugins
 * (scripts/pack-gpu.sh): a package whose index.mjs re-exports, name by name, the instance that
 * scripts/gpu/bundle-entry.ts put on globalThis. Usage: tsx scripts/gpu/write-shared-modules.ts <out>
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as core from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import * as zod from 'zod';

const SHARED: Record<string, object> = { '@interleave/core': core, '@tensorflow/tfjs': tf, zod };
/** The shim's own binding, kept out of the export names. */
const INSTANCE = '__interleaveSharedInstance';
const out = process.argv[2];
if (out === undefined) throw new Error('usage: write-shared-modules.ts <out-dir>');

for (const [name, module] of Object.entries(SHARED)) {
  const names = Object.keys(module).filter((key) => /^[A-Za-z_$][\w$]*$/.test(key) && key !== 'default');
  // Reserved words (zod exports `catch`) cannot be bound by `export const`; they go out under an alias.
  const plain = names.filter(isBindable);
  const aliased = names.filter((key) => !isBindable(key));
  const folder = join(out, 'node_modules', name);
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, 'package.json'), `${JSON.stringify({ name, type: 'module', exports: './index.mjs' })}\n`);
  writeFileSync(
    join(folder, 'index.mjs'),
    `// The Interleave CLI bundle's ${name}, shared with plugins (scripts/gpu/bundle-entry.ts).\n` +
      `const ${INSTANCE} = globalThis.__interleaveSharedModules?.[${JSON.stringify(name)}];\n` +
      `if (${INSTANCE} === undefined) throw new Error(${JSON.stringify(`${name} comes from the Interleave CLI bundle: load plugins through interleave.mjs`)});\n` +
      `export const { ${plain.join(', ')} } = ${INSTANCE};\n` +
      aliased.map((key, i) => `const alias${i} = ${INSTANCE}.${key};\nexport { alias${i} as ${key} };\n`).join('') +
      `export default ${INSTANCE}.default ?? ${INSTANCE};\n`,
  );
}
process.stdout.write(`${Object.keys(SHARED).join(' ')}\n`);

function isBindable(name: string): boolean {
  // Global names a module-level binding would shadow while it is being initialised (zod exports `undefined`).
  if (
    name === INSTANCE ||
    /^alias\d+$/.test(name) ||
    ['undefined', 'NaN', 'Infinity', 'eval', 'arguments'].includes(name)
  ) {
    return false;
  }
  try {
    new Function(`let ${name};`);
    return true;
  } catch {
    return false;
  }
}
