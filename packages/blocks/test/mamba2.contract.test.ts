import { mamba2Block } from '../src/mamba2.js';
import { runBlockContract } from '../src/testing/index.js';

// Chunks of 4 and 5 over the contract's 12 tokens: several chunks, and a padded last one.
const backends = ['cpu', 'wasm'] as const;

runBlockContract(mamba2Block, { d_state: 4, headdim: 8, chunk_size: 4 }, { backends });
runBlockContract(mamba2Block, { d_state: 8, headdim: 4, ngroups: 2, d_conv: 2, chunk_size: 5 }, { backends: ['wasm'] });
