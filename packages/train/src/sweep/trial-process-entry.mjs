// A trial process is forked by plain Node: register tsx first so the TypeScript sources load,
// as bin/interleave.mjs does for the CLI.
import { register } from 'tsx/esm/api';

register();
await import('./trial-process.ts');
