import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'bench/**/*.test.ts', 'examples/plugins/*/test/**/*.test.ts'],
    exclude: [
      'packages/*/test/**/*.slow.test.ts',
      'examples/plugins/*/test/**/*.slow.test.ts',
      'examples/plugins/*/test/**/*.tensorflow.test.ts',
      'packages/*/test/**/*.tensorflow.test.ts',
      '**/node_modules/**',
    ],
    // The webgpu tests' Debian packages (Mesa's llvmpipe, a Vulkan loader), installed if missing.
    globalSetup: ['packages/core/test/webgpu-global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 600_000,
    pool: 'forks',
  },
});
