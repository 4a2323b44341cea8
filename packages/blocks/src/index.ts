import type { Plugin } from '@interleave/core';
import { fullAttentionBlock, slidingWindowAttentionBlock } from './attention.js';
import { gatedMlp } from './gated-mlp.js';
import { rglruBlock } from './griffin.js';
import { mambaBlock } from './mamba.js';
import { rmsNorm } from './rms-norm.js';

export { fullAttentionBlock, slidingWindowAttentionBlock } from './attention.js';
export { gatedMlp } from './gated-mlp.js';
export { rglruBlock } from './griffin.js';
export { mambaBlock } from './mamba.js';
export { rmsNorm } from './rms-norm.js';
export { linearScan } from './scan/linear-scan.js';

/** Registers every built-in block, the RMSNorm and the gated MLP. */
export const registerBuiltinBlocks: Plugin = (api) => {
  api.provideNorm(rmsNorm);
  api.provideMlp(gatedMlp);
  for (const block of [mambaBlock, slidingWindowAttentionBlock, fullAttentionBlock, rglruBlock])
    api.registerBlock(block);
};
