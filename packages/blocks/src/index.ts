import type { Plugin } from '@interleave/core';
import { fullAttentionBlock, slidingWindowAttentionBlock } from './attention.js';
import { gatedMlp } from './gated-mlp.js';
import { hyenaBlock } from './hyena.js';
import { mambaBlock } from './mamba.js';
import { rglruBlock } from './rglru.js';
import { rmsNorm } from './rms-norm.js';

export { fullAttentionBlock, slidingWindowAttentionBlock } from './attention.js';
export { gatedMlp } from './gated-mlp.js';
export { type HyenaConfig, hyenaBlock, hyenaSchema } from './hyena.js';
export { mambaBlock } from './mamba.js';
export { rglruBlock } from './rglru.js';
export { rmsNorm } from './rms-norm.js';
export { linearScan } from './scan/linear-scan.js';

/** Registers every built-in block, the RMSNorm and the gated MLP. */
export const registerBuiltinBlocks: Plugin = (api) => {
  api.provideNorm(rmsNorm);
  api.provideMlp(gatedMlp);
  const blocks = [mambaBlock, slidingWindowAttentionBlock, fullAttentionBlock, rglruBlock, hyenaBlock] as const;
  for (const block of blocks) api.registerBlock(block);
};
