import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { InterleaveError } from '../../src/errors.js';
import { architectureName } from '../../src/model/architecture.js';
import { formatFlops, modelFlopsPerToken } from '../../src/model/model-flops.js';
import type { ResolvedLayer } from '../../src/model/resolve-layers.js';
import type { BlockDefinition, MlpFactory, NormFactory } from '../../src/registry/block-definition.js';
import { createContainer, pluginApi } from '../../src/registry/container.js';

/** A block whose cost is `scale`·d·L forward and twice that backward, so the test sees both shape fields. */
function fakeBlock(name: string): BlockDefinition<{ scale: number }> {
  return {
    name,
    description: 'test block',
    schema: z.strictObject({ scale: z.number() }),
    create: () => {
      throw new Error('not built in this test');
    },
    flops: ({ scale }, { dModel, seqLen }) => ({
      forward: scale * dModel * seqLen,
      backward: 2 * scale * dModel * seqLen,
    }),
    stateBytes: ({ scale }, { dModel }) => ({ bytes: 4 * scale * dModel, growsWithLength: false }),
  };
}

const norm: NormFactory = {
  create: () => ({ apply: (x) => x }),
  flops: (dModel) => ({ forward: 3 * dModel, backward: 5 * dModel }),
};
const mlp: MlpFactory = {
  create: () => ({ apply: (x) => x }),
  flops: (dModel, config) => ({ forward: 100 * config.expansion * dModel, backward: 200 * config.expansion * dModel }),
};

function layer(block: BlockDefinition<{ scale: number }>, scale: number, mlpExpansion?: number): ResolvedLayer {
  return {
    block: block as BlockDefinition<unknown>,
    config: { scale },
    mlp: mlpExpansion === undefined ? null : { expansion: mlpExpansion, activation: 'gelu' },
    path: [],
  };
}

describe('modelFlopsPerToken', () => {
  const a = fakeBlock('a');
  const b = fakeBlock('b');
  const layers = [layer(a, 1, 2), layer(b, 3)];
  const d = 4;
  const vocab = 10;
  const seqLen = 8;
  const flops = modelFlopsPerToken({ config: { d_model: d, vocab_size: vocab }, layers, norm, mlp, seqLen });

  it('sums every layer (mixer, norms, residual adds, MLP), the final norm, the head and the loss', () => {
    const forward =
      1 * d * seqLen + // layer 0 mixer
      100 * 2 * d + // its MLP
      2 * (3 * d + d) + // two pre-norms and two residual adds
      3 * d * seqLen + // layer 1 mixer
      (3 * d + d) + // one pre-norm and residual add
      0 + // embedding lookup
      3 * d + // final norm
      2 * d * vocab + // head
      5 * vocab; // log-softmax cross-entropy
    const backward =
      2 * d * seqLen +
      200 * 2 * d +
      2 * (5 * d + 2 * d) +
      6 * d * seqLen +
      (5 * d + 2 * d) +
      d +
      5 * d +
      4 * d * vocab +
      10 * vocab;
    expect(flops.forward).toBe(forward);
    expect(flops.backward).toBe(backward);
    expect(flops.total).toBe(forward + backward);
  });

  it('breaks the count down per layer', () => {
    expect(flops.layers.map((entry) => entry.block)).toEqual(['a', 'b']);
    expect(flops.layers[0]?.mixer).toEqual({ forward: 32, backward: 64 });
    expect(flops.layers[0]?.mlp).toEqual({ forward: 800, backward: 1600 });
    expect(flops.layers[1]?.mlp).toEqual({ forward: 0, backward: 0 });
    expect(flops.layers[1]?.total).toEqual({ forward: 96 + 16, backward: 192 + 28 });
    expect(flops.head).toEqual({ forward: 80, backward: 160 });
  });

  it('names the architecture by its blocks in layer order, repeats kept', () => {
    expect(architectureName([layer(a, 1), layer(a, 1), layer(b, 1)])).toBe('a+a+b');
  });

  it('formats FLOP counts with SI prefixes', () => {
    expect(formatFlops(1_234_567)).toBe('1.23 MFLOP');
    expect(formatFlops(999)).toBe('999 FLOP');
    expect(formatFlops(2.5e12)).toBe('2.50 TFLOP');
  });
});

describe('registration demands a FLOP count', () => {
  it('rejects a block without flops (a JavaScript plugin), naming it', () => {
    const api = pluginApi(createContainer());
    const { flops: _omitted, ...withoutFlops } = fakeBlock('js_block');
    expect(() => api.registerBlock(withoutFlops as BlockDefinition<unknown>)).toThrow(InterleaveError);
    expect(() => api.registerBlock(withoutFlops as BlockDefinition<unknown>)).toThrow(
      "block 'js_block' has no flops(config, { dModel, seqLen }) method",
    );
    expect(() => api.registerBlock(fakeBlock('ts_block'))).not.toThrow();
  });

  it('rejects a block without stateBytes, naming it', () => {
    const api = pluginApi(createContainer());
    const { stateBytes: _omitted, ...withoutState } = fakeBlock('stateless_js_block');
    expect(() => api.registerBlock(withoutState as BlockDefinition<unknown>)).toThrow(
      "block 'stateless_js_block' has no stateBytes(config, { dModel, length }) method",
    );
  });

  it('rejects a norm or MLP without flops', () => {
    const api = pluginApi(createContainer());
    expect(() => api.provideNorm({ create: norm.create } as NormFactory)).toThrow('the norm passed to provideNorm');
    expect(() => api.provideMlp({ create: mlp.create } as MlpFactory)).toThrow('the MLP passed to provideMlp');
    expect(() => api.provideNorm(norm)).not.toThrow();
  });
});
