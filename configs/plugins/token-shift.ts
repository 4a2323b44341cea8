/**
 * An example block plugin: a "token shift" mixer (as in RWKV), y_t = W_cur·x_t + W_prev·x_{t−1}.
 * It shows the whole contract a block implements: a config schema, PyTorch-style parameters,
 * a parallel `forward`, and a recurrent `initState`/`step` that reproduces it.
 *
 * `flops` declares its compute per token, which training logs as `compute/flops` (docs/design.md#flop-counting):
 * two d×d products and one add, counted with core's helpers (a multiply-add is 2 FLOPs; a
 * linear layer's backward costs twice its forward; a pointwise op 1, its backward 2).
 *
 * Use it from a config with `plugins: [./plugins/token-shift.ts]` and `{ block: token_shift }`;
 * test it with `runBlockContract` from `@interleave/blocks/testing`.
 */
import {
  type BlockDefinition,
  float32State,
  linearFlops,
  type Mixer,
  matmul,
  type Plugin,
  pointwiseFlops,
  scaleFlops,
  sumFlops,
  uniformInit,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';

const schema = z.strictObject({
  /** Scale of the initial weights relative to PyTorch's default Linear init. */
  init_scale: z.number().positive().default(1),
});

type TokenShiftConfig = z.infer<typeof schema>;

export const tokenShiftBlock: BlockDefinition<TokenShiftConfig> = {
  name: 'token_shift',
  description: 'y_t = W_cur x_t + W_prev x_{t-1} (an example plugin)',
  schema,
  create({ dModel, params }, config): Mixer<{ previous: tf.Tensor2D }> {
    const bound = config.init_scale / Math.sqrt(dModel);
    const init = uniformInit(-bound, bound);
    const current = params.create('current.weight', [dModel, dModel], init);
    const previous = params.create('previous.weight', [dModel, dModel], init);
    const project = (x: tf.Tensor, w: tf.Variable) => matmul(x.reshape([-1, dModel]), w, false, true).reshape(x.shape);
    return {
      forward: (x) =>
        tf.tidy(() => {
          const [batch, length] = x.shape;
          const shifted = tf
            .pad(x, [
              [0, 0],
              [1, 0],
              [0, 0],
            ])
            .slice([0, 0, 0], [batch, length, dModel]);
          return project(x, current).add(project(shifted, previous)) as tf.Tensor3D;
        }),
      initState: (batchSize) => ({ previous: tf.zeros([batchSize, dModel]) }),
      step: (x, state) =>
        tf.tidy(() => ({
          y: project(x, current).add(project(state.previous, previous)) as tf.Tensor2D,
          state: { previous: x.clone() },
        })),
    };
  },
  flops: (_config, { dModel }) =>
    sumFlops(
      scaleFlops(linearFlops(dModel, dModel), 2), // W_cur·x_t, W_prev·x_{t−1}
      pointwiseFlops(dModel), // their sum
    ),
  // The state is the previous token's input: d_model float32 numbers.
  stateBytes: (_config, { dModel }) => float32State(dModel),
};

const register: Plugin = (api) => api.registerBlock(tokenShiftBlock);
export default register;
