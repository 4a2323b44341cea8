import {
  ACTIVATION_OPS,
  type ComponentContext,
  fanInUniformInit,
  linearFlops,
  type MlpConfig,
  type MlpFactory,
  type PositionwiseLayer,
  pointwiseFlops,
  scaleFlops,
  sumFlops,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { ACTIVATIONS } from './ops/activations.js';
import { linear } from './ops/linear.js';

/** Gated MLP (GeGLU / SwiGLU): down(act(gate(x)) ⊙ up(x)), hidden = expansion · d_model. */
export const gatedMlp: MlpFactory = {
  create({ dModel, params }: ComponentContext, config: MlpConfig): PositionwiseLayer {
    const hidden = Math.round(config.expansion * dModel);
    const gate = params.create('gate_proj.weight', [hidden, dModel], fanInUniformInit(dModel));
    const up = params.create('up_proj.weight', [hidden, dModel], fanInUniformInit(dModel));
    const down = params.create('down_proj.weight', [dModel, hidden], fanInUniformInit(hidden));
    const activation = ACTIVATIONS[config.activation];
    return {
      apply: <T extends tf.Tensor>(x: T): T =>
        tf.tidy(() => linear(activation(linear(x, gate)).mul(linear(x, up)), down) as T),
    };
  },
  flops(dModel: number, config: MlpConfig) {
    const hidden = Math.round(config.expansion * dModel);
    return sumFlops(
      scaleFlops(linearFlops(dModel, hidden), 2), // gate_proj, up_proj
      pointwiseFlops((ACTIVATION_OPS[config.activation] + 1) * hidden), // act(gate) ⊙ up
      linearFlops(hidden, dModel), // down_proj
    );
  },
};
