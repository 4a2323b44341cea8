// Entry of the batch worker thread in a checkout: the CLI runs TypeScript through tsx, whose
// loader a worker thread does not inherit. Bundles (scripts/pack-gpu.sh) build this name from
// batch-worker-thread.ts directly.
import { register } from 'tsx/esm/api';

register();
await import('./batch-worker-thread.ts');
