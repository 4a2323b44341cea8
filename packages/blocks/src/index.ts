import type { Plugin } from '@interleave/core';
import { fullAttentionBlock, slidingWindowAttentionBlock } from './attention.js';
import { deltanetBlock } from './deltanet.js';
import { gatedDeltanetBlock } from './gated-deltanet.js';
import { gatedMlp } from './gated-mlp.js';
import { glaBlock } from './gla.js';
import { hyenaBlock } from './hyena.js';
import { mambaBlock } from './mamba.js';
import { mamba2Block } from './mamba2.js';
import { rglruBlock } from './rglru.js';
import { rmsNorm } from './rms-norm.js';

export { fullAttentionBlock, slidingWindowAttentionBlock } from './attention.js';
export { type DeltaNetConfig, deltanetBlock, deltanetSchema } from './deltanet.js';
export { type GatedDeltaNetConfig, gatedDeltanetBlock, gatedDeltanetSchema } from './gated-deltanet.js';
export { gatedMlp } from './gated-mlp.js';
export { type GlaConfig, glaBlock, glaSchema } from './gla.js';
export { type HyenaConfig, hyenaBlock, hyenaSchema } from './hyena.js';
export { mambaBlock } from './mamba.js';
export { type Mamba2Config, mamba2Block, mamba2Schema } from './mamba2.js';
export { rglruBlock } from './rglru.js';
export { rmsNorm } from './rms-norm.js';
export { linearScan } from './scan/linear-scan.js';

/** Registers every built-in block, the RMSNorm and the gated MLP. */
export const registerBuiltinBlocks: Plugin = (api) => {
  api.provideNorm(rmsNorm);
  api.provideMlp(gatedMlp);
  const blocks = [mambaBlock, slidingWindowAttentionBlock, fullAttentionBlock, rglruBlock, hyenaBlock] as const;
  for (const block of blocks) api.registerBlock(block);
  // The chunked linear-recurrence family (docs/design.md#chunked-linear-recurrences).
  const chunkedBlocks = [mamba2Block, glaBlock, deltanetBlock, gatedDeltanetBlock] as const;
  for (const block of chunkedBlocks) api.registerBlock(block);
};
