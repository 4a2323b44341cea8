/**
 * The entry of the GPU bundle's CLI (`interleave.mjs`, built by scripts/pack-gpu.sh): plugins
 * share this bundle's modules (plugin-sharing.ts), then the CLI runs.
 */
import { sharePluginModules } from './plugin-sharing.js';

sharePluginModules();
await import('../../packages/train/src/cli/main.js');
