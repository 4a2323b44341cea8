import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { InterleaveError } from '@interleave/core';
import { blockNameForms, blockPackageFiles } from '../../scaffold/block-package.js';
import { type Command, parseCommandLine } from '../command.js';

const BLOCK_NAME = /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/;
const PACKAGE_NAME = /^(@[a-z0-9][a-z0-9._-]*\/)?[a-z0-9][a-z0-9._-]*$/;

export const newBlockCommand: Command = {
  name: 'new-block',
  usage: `  new-block <name> [--out DIR] [--package NAME]
      write a plugin package with one block <name> (snake_case), its contract test and an MQAR
      config, ready to test and train (docs/plugins.md)
      --out DIR              where to write it (default ./<name with dashes>); must be empty or new
      --package NAME         the npm package name (default interleave-block-<name with dashes>)`,
  async run(args) {
    const { values, positionals } = parseCommandLine(args, {
      out: { type: 'string' },
      package: { type: 'string' },
    });
    if (positionals.length !== 1) {
      throw new InterleaveError('new-block takes one block name: interleave new-block my_mixer [--out DIR]');
    }
    const block = positionals[0] as string;
    if (!BLOCK_NAME.test(block)) {
      throw new InterleaveError(
        `block name '${block}' must be snake_case: lower-case letters and digits joined by '_', starting with a letter`,
      );
    }
    const { kebab } = blockNameForms(block);
    const packageName = values.package ?? `interleave-block-${kebab}`;
    if (!PACKAGE_NAME.test(packageName)) throw new InterleaveError(`'${packageName}' is not a valid npm package name`);
    const out = resolve(values.out ?? kebab);
    if (existsSync(out) && readdirSync(out).length > 0) {
      throw new InterleaveError(`${out} already exists and is not empty; choose another --out`);
    }
    const files = blockPackageFiles({ block, packageName, interleaveDependency: interleaveDependency(out) });
    for (const [path, text] of Object.entries(files)) {
      const target = join(out, path);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, text);
    }
    const shown = relative(process.cwd(), out) || '.';
    process.stdout.write(
      `wrote ${Object.keys(files).length} files to ${shown}: block '${block}' in package ${packageName}\n` +
        `  cd ${shown} && pnpm test                                  # the block contract\n` +
        `  cd ${shown} && pnpm interleave train configs/mqar-${kebab}.yaml   # train it\n`,
    );
    return 0;
  },
};

/**
 * How the package depends on @interleave/*: `workspace:*` inside an Interleave checkout (the
 * packages are not published), else a `link:` to the package in the checkout this CLI runs from.
 */
function interleaveDependency(out: string): (name: 'core' | 'blocks' | 'train') => string {
  if (findWorkspaceRoot(out) !== undefined) return () => 'workspace:*';
  const ownRoot = findWorkspaceRoot(import.meta.dirname);
  if (ownRoot === undefined) throw new InterleaveError('cannot find the Interleave checkout this CLI runs from');
  return (name) => `link:${relative(out, join(ownRoot, 'packages', name))}`;
}

/** The nearest directory at or above `start` holding Interleave's pnpm workspace. */
function findWorkspaceRoot(start: string): string | undefined {
  let directory = resolve(start);
  for (;;) {
    const manifest = join(directory, 'packages', 'core', 'package.json');
    if (existsSync(join(directory, 'pnpm-workspace.yaml')) && existsSync(manifest)) {
      if (JSON.parse(readFileSync(manifest, 'utf8')).name === '@interleave/core') return directory;
    }
    const parent = dirname(directory);
    if (parent === directory) return undefined;
    directory = parent;
  }
}
