/**
 * The entry of the GPU bundle's batch worker (`batch-worker.mjs` beside each bundle that trains,
 * built by scripts/pack-gpu.sh): the worker thread loads the config's plugins too, so they share
 * its modules the same way as the CLI's (plugin-sharing.ts).
 */
import { sharePluginModules } from './plugin-sharing.js';

sharePluginModules();
await import('../../packages/train/src/trainer/batch-worker-thread.js');
