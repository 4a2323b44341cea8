import { fullAttentionBlock, hyenaBlock, mambaBlock, rglruBlock, slidingWindowAttentionBlock } from '../src/index.js';
import { runBlockContract } from '../src/testing/index.js';

// Every built-in block through the plugin contract on the native TensorFlow backend (run by
// `pnpm test:tensorflow` once `pnpm setup:tensorflow` has built it): the same configs as the
// cpu/wasm contract files. There the scans run the fused kernels (registered for tensorflow
// too) and Hyena its FFT long convolution on TensorFlow's own FFT kernels.
const backends = ['tensorflow'] as const;

runBlockContract(mambaBlock, { d_state: 4, d_conv: 4, expand: 2 }, { backends });
runBlockContract(mambaBlock, { d_state: 8, d_conv: 2, expand: 1, dt_rank: 3 }, { backends });
runBlockContract(slidingWindowAttentionBlock, { window: 4, heads: 2 }, { backends, seqLen: 12 });
runBlockContract(slidingWindowAttentionBlock, { window: 1, heads: 4, kv_heads: 1 }, { backends });
runBlockContract(slidingWindowAttentionBlock, { window: null, heads: 4, kv_heads: 2 }, { backends });
runBlockContract(
  slidingWindowAttentionBlock,
  { window: 2, heads: 2 },
  { backends, seqLen: 12, gradients: { seqLen: 12 } },
);
runBlockContract(fullAttentionBlock, { heads: 2 }, { backends });
runBlockContract(rglruBlock, {}, { backends });
runBlockContract(rglruBlock, { d_rnn: 24, heads: 4, conv_width: 2, c: 4 }, { backends });
runBlockContract(rglruBlock, { d_rnn: 1040, heads: 65 }, { backends, gradients: { dModel: 4 } });
runBlockContract(hyenaBlock, { filter_order: 8, max_len: 32 }, { backends });
runBlockContract(
  hyenaBlock,
  { order: 3, filter_order: 6, emb_dim: 5, num_inner_mlps: 1, short_filter_order: 2, max_len: 16, shift: 0.1 },
  { backends },
);
