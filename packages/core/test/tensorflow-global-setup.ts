import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

/**
 * Before `pnpm test:tensorflow`: one clear line instead of a failure per test where the native
 * backend is not set up. Probed in a child process, as loading the addon is for good.
 */
export default function requireTensorflowBackend(): void {
  const probe = `import('@tensorflow/tfjs-node').then(() => process.exit(0), () => process.exit(1))`;
  const result = spawnSync(process.execPath, ['-e', probe], {
    cwd: resolve(import.meta.dirname, '..'),
    stdio: 'ignore',
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' },
  });
  if (result.status !== 0) {
    // Thrown, this would come with vitest's stack trace and a misleading "no test files found".
    process.stderr.write(
      "test:tensorflow: the native TensorFlow backend is not set up here: run 'npx -y pnpm@10.34.9 setup:tensorflow' first (Linux x86_64)\n",
    );
    process.exit(1);
  }
}
