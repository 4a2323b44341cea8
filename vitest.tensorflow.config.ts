import { defineConfig } from 'vitest/config';

// `pnpm test:tensorflow`: the tests of the native TensorFlow backend, which exists only after
// `pnpm setup:tensorflow`; kept out of `pnpm test` so that a clone without it runs (and skips)
// nothing of them. They fail, saying so, where the backend is not set up.
export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.tensorflow.test.ts', 'examples/plugins/*/test/**/*.tensorflow.test.ts'],
    globalSetup: ['packages/core/test/tensorflow-global-setup.ts'],
    testTimeout: 120_000,
    hookTimeout: 600_000,
    pool: 'forks',
  },
});
