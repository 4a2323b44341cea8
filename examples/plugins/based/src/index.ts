import type { Plugin } from '@interleave/core';
import { basedBlock } from './based.js';

export * from './based.js';

/** Registers the `based` block: list `@interleave-examples/based` under a config's `plugins:`. */
const register: Plugin = (api) => api.registerBlock(basedBlock);
export default register;
