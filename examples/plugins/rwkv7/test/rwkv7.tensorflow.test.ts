import { runBlockContract } from '@interleave/blocks/testing';
import { rwkv7Block } from '../src/index.js';

// The block contract on the native TensorFlow backend (run by `pnpm test:tensorflow` once
// `pnpm setup:tensorflow` has built it): the configs of the cpu/wasm contract file.
const backends = ['tensorflow'] as const;
const small = { heads: 2, decay_low_rank_dim: 4, a_low_rank_dim: 3, gate_low_rank_dim: 5, init: 'fan_in' };
runBlockContract(rwkv7Block, { ...small, chunk_size: 4 }, { backends });
runBlockContract(rwkv7Block, { ...small, heads: 1, chunk_size: 8 }, { backends, seqLen: 19 });
