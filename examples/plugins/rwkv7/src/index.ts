import type { Plugin } from '@interleave/core';
import { rwkv7Block } from './rwkv7.js';

export * from './dplr-recurrence.js';
export * from './rwkv7.js';

/** Registers the `rwkv7` block: list `@interleave-examples/rwkv7` under a config's `plugins:`. */
const register: Plugin = (api) => api.registerBlock(rwkv7Block);
export default register;
