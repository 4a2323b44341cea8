// A benchmark job runs in a child process forked by plain Node: register tsx first so the
// TypeScript sources load, as packages/train/src/sweep/trial-process-entry.mjs does for trials.
import { register } from 'tsx/esm/api';

register();
await import('./child.ts');
