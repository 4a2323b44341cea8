/** What a plugin author writes: one line registers the whole contract, here on two backends. */
import { runBlockContract } from '../../src/testing/index.js';
import { toyBlock } from './toy-mixers.js';

runBlockContract(toyBlock(), { gain: 2 }, { dModel: 8, seqLen: 8, backends: ['cpu', 'wasm'] });
