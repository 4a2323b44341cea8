import { mambaBlock, registerBuiltinBlocks, rglruBlock, slidingWindowAttentionBlock } from '@interleave/blocks';
import {
  applyPlugin,
  capabilitiesOf,
  createContainer,
  LanguageModel,
  type ResolvedLayer,
  SeededRandom,
} from '@interleave/core';
import { inductionTestBatches, lastPredictionsByStep, StepModeReplay } from '@interleave/eval';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { startWebgpuBackend } from '../../blocks/test/support/webgpu-device.js';

/**
 * Step-mode evaluation with the per-token step recorded and replayed (eval's
 * step-mode-replay.ts): the same kernels on the same data as stepping through tfjs, so the last
 * step's logits are bit-identical; models whose step keeps reading a position are never replayed.
 */

beforeAll(async () => {
  await startWebgpuBackend();
});

/** A layer of `block` with `config` parsed by its schema, no MLP. */
function layer(block: { schema: { parse(value: unknown): unknown } }, config: Record<string, unknown>): ResolvedLayer {
  return { block: block as never, config: block.schema.parse(config) as never, mlp: null, path: [] };
}

async function modelOf(resolved: ResolvedLayer[]) {
  const container = createContainer();
  await applyPlugin(container, registerBuiltinBlocks);
  return LanguageModel.build({
    container,
    config: { vocab_size: 16, d_model: 16, layers: [], tie_embeddings: true, norm_eps: 1e-5 },
    layers: resolved,
    rng: new SeededRandom(11),
    backend: capabilitiesOf(tf.getBackend()),
  });
}

/** The last step's logits of both paths over one batch, and the replay's status. */
async function bothPaths(model: LanguageModel, seqLen: number) {
  const [batch] = inductionTestBatches(5, 16, seqLen, 12, 12);
  if (batch === undefined) throw new Error('no batch');
  const viaTfjs = await lastPredictionsByStep(model, batch);
  const replay = new StepModeReplay('auto');
  const before = tf.memory().numTensors;
  const replayed = await lastPredictionsByStep(model, batch, replay);
  expect(tf.memory().numTensors).toBe(before);
  return { viaTfjs, replayed, status: replay.status };
}

describe('step-mode evaluation replayed on webgpu (Dawn over llvmpipe)', () => {
  it('gives Mamba the same last logits as stepping through tfjs, over 130 replayed steps', async () => {
    const model = await modelOf([layer(mambaBlock, { d_state: 4 }), layer(mambaBlock, { d_state: 4 })]);
    try {
      const { viaTfjs, replayed, status } = await bothPaths(model, 136);
      // Recorded at 2 and 3; positions 4..135 replayed (the last one read back).
      expect(status).toMatch(/^replayed 132 steps \(\d+ dispatches a step\)$/);
      expect(Array.from(replayed.logits)).toEqual(Array.from(viaTfjs.logits));
      expect(Array.from(replayed.predictions)).toEqual(Array.from(viaTfjs.predictions));
      expect(replayed.stateBytes).toBe(viaTfjs.stateBytes);
      // The rows differ: equal logits are not those of one constant output.
      expect(new Set(viaTfjs.logits.subarray(0, 16)).size).toBeGreaterThan(1);
      expect(Array.from(viaTfjs.logits.subarray(0, 16))).not.toEqual(Array.from(viaTfjs.logits.subarray(16, 32)));
    } finally {
      model.dispose();
    }
  });

  it('replays RG-LRU past its first-token branch (stepStationaryFrom 1) with the same logits', async () => {
    const model = await modelOf([layer(rglruBlock, {}), layer(rglruBlock, {})]);
    try {
      const { viaTfjs, replayed, status } = await bothPaths(model, 40);
      expect(status).toMatch(/^replayed 36 steps/);
      expect(Array.from(replayed.logits)).toEqual(Array.from(viaTfjs.logits));
    } finally {
      model.dispose();
    }
  });

  it('steps a sliding-window hybrid through tfjs, saying why, with the same logits', async () => {
    const model = await modelOf([
      layer(mambaBlock, { d_state: 4 }),
      layer(slidingWindowAttentionBlock, { window: 8, heads: 2 }),
    ]);
    try {
      const { viaTfjs, replayed, status } = await bothPaths(model, 24);
      expect(status).toBe(
        "off: a layer's step keeps reading a position from its state (attention, sliding windows) or the model adds learned positions",
      );
      expect(Array.from(replayed.logits)).toEqual(Array.from(viaTfjs.logits));
    } finally {
      model.dispose();
    }
  });

  it('is off when asked, and off the webgpu backend', () => {
    expect(new StepModeReplay('off').status).toBe('off: step_replay is off');
    expect(new StepModeReplay('auto').status).toMatch(/^not replayed: /);
  });
});
