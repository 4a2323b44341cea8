import { availableParallelism } from 'node:os';
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
    // Vitest's default (one worker fewer than the cores) runs the files one at a time on a 2-core
    // machine, where much of the suite waits on processes it starts (MLflow and Redis servers,
    // CLI runs): two files at a time took the suite from 835 s to 575 s on 2 cores (CI's machine).
    maxWorkers: Math.max(2, availableParallelism() - 1),
  },
});
