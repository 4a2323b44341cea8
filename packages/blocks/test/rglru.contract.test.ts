import { rglruBlock } from '../src/rglru.js';
import { runBlockContract } from '../src/testing/index.js';

// The defaults (d_rnn = round(4/3·d_model), one head at these widths, conv 4), and an explicit
// width with block-diagonal gates, a shorter convolution and a smaller c.
const backends = ['cpu', 'wasm'] as const;

runBlockContract(rglruBlock, {}, { backends });
runBlockContract(rglruBlock, { d_rnn: 24, heads: 4, conv_width: 2, c: 4 }, { backends });
// Above d_rnn 1024 the gates run as a batched product per head instead of one dense product.
runBlockContract(rglruBlock, { d_rnn: 1040, heads: 65 }, { backends: ['wasm'], gradients: { dModel: 4 } });
