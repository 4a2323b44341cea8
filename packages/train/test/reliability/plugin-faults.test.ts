import { join } from 'node:path';
import { ConfigError } from '@interleave/core';
import { describe, expect, it } from 'vitest';
import { prepareRun } from '../../src/run/prepare-run.js';
import { expectOneCleanLine, interleave, scratchDirectory, tinyConfig } from './support.js';

/** Plugins that go wrong in each way a plugin can, written as plain modules beside the config. */
const PLUGINS = {
  'no-registration.mjs': 'export const version = 1;\n',
  'throws.mjs': "export default function register() {\n  throw new Error('the GPU kernel table is missing');\n}\n",
  'name-taken.mjs':
    "export default function register(api) {\n  api.registerBlock({ name: 'mamba', flops: () => ({ forward: 0, backward: 0 }) });\n}\n",
  'syntax-error.mjs': 'export default function register( {\n',
};

const CASES: Array<{ plugin: string; problem: RegExp }> = [
  { plugin: './missing.mjs', problem: /cannot load plugin '\.\/missing\.mjs': Cannot find module '.*missing\.mjs'/ },
  {
    plugin: './no-registration.mjs',
    problem: /plugin '\.\/no-registration\.mjs' exports neither a default function nor 'register'$/,
  },
  {
    plugin: './throws.mjs',
    problem: /plugin '\.\/throws\.mjs' failed to register: the GPU kernel table is missing$/,
  },
  {
    plugin: './name-taken.mjs',
    problem: /plugin '\.\/name-taken\.mjs' failed to register: block 'mamba' is registered twice$/,
  },
  { plugin: './syntax-error.mjs', problem: /cannot load plugin '\.\/syntax-error\.mjs': / },
];

function configWith(plugin: string): string {
  return tinyConfig('plugin-faults', 2).replace('backend: wasm\n', `backend: wasm\nplugins: [${plugin}]\n`);
}

describe('plugins that go wrong', () => {
  for (const { plugin, problem } of CASES) {
    it(`names ${plugin} and where the config lists it, in one line`, async () => {
      const dir = scratchDirectory('plugin-faults', { ...PLUGINS, 'config.yaml': configWith(plugin) });
      const file = join(dir, 'config.yaml');
      const error = await prepareRun(file).then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      expect(error).toBeInstanceOf(ConfigError);
      const message = (error as Error).message;
      expect(message.split('\n')).toHaveLength(1);
      expect(message.startsWith(`${file}:4:11: plugins[0]: `)).toBe(true);
      expect(message).toMatch(problem);
    });
  }

  it('prints the same line from `interleave train`, with no stack trace', () => {
    const dir = scratchDirectory('plugin-faults', { ...PLUGINS, 'config.yaml': configWith('./throws.mjs') });
    const { status, stderr } = interleave(['train', 'config.yaml'], dir);
    expect(status).toBe(1);
    expectOneCleanLine(
      stderr,
      "config.yaml:4:11: plugins[0]: plugin './throws.mjs' failed to register: the GPU kernel table is missing",
    );
  });
});
