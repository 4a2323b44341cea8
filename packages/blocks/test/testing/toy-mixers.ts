/**
 * Throwaway mixers for the tests of the contract checks: one correct causal mixer, and copies
 * of it with one deliberate bug each. Not blocks of the project.
 *
 * The correct one: y_t = gain · tanh(W · mean(x_0 … x_t)), W [D, D] (PyTorch layout, out × in).
 * Its step keeps the running sum and the count.
 */
import {
  type BlockContext,
  type BlockDefinition,
  fanInUniformInit,
  float32State,
  type Initializer,
  linearFlops,
  type Mixer,
  type MixerState,
  pointwiseFlops,
  sumFlops,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';

export type ToyBug =
  | 'none'
  /** forward adds half of the next token to each position: non-causal by one step. */
  | 'look-ahead'
  /** forward divides by the RMS of x over the whole sequence (normalising over time). */
  | 'global-norm'
  /** forward ignores x: no output depends on the input at all. */
  | 'ignores-input'
  /** step lets its running sum decay by 0.999 per token: a small drift from forward. */
  | 'step-drift'
  /** step keeps one extra tensor per call. */
  | 'step-leak'
  /** step disposes the state it was given. */
  | 'step-disposes-state'
  /** step returns a tensor of its input state inside the new state. */
  | 'step-shares-state'
  /** step keeps the caller's x itself (not a copy) in the state it returns. */
  | 'step-stores-input'
  /** forward keeps one extra tensor per call. */
  | 'forward-leak'
  /** tanh's backward pass uses (1 − y) instead of (1 − y²). */
  | 'wrong-tanh-grad'
  /** tanh's backward pass has the wrong sign. */
  | 'sign-flipped-grad'
  /** the backward pass of the projection returns dWᵀ for W (dx is right). */
  | 'transposed-weight-grad'
  /** forward adds a residual 0.5·x whose gradient the custom backward pass forgets. */
  | 'missing-input-grad-term'
  /** W is copied through the host (dataSync) before use, so no gradient reaches it. */
  | 'detached-weight'
  /** creates a `bias` parameter that forward never uses. */
  | 'unused-parameter'
  /** adds 1e-7 · bias: a gradient far below what float32 finite differences resolve. */
  | 'faint-bias'
  /** initialises W from Math.random instead of the seeded initializer. */
  | 'unseeded-init'
  /** the running sum uses tf.cumsum over axis 1, whose tfjs 4.22 gradient is wrong. */
  | 'tfjs-cumsum-axis-1'
  /** stateBytes declares half of the running sum it keeps. */
  | 'undercounted-state';

export const toySchema = z.strictObject({ gain: z.number().positive().default(1) });
export type ToyConfig = z.infer<typeof toySchema>;

interface ToyState extends MixerState {
  sum: tf.Tensor2D;
  count: number;
  /** Only for 'step-shares-state': a constant tensor carried from state to state (else 0). */
  marker: tf.Tensor1D | number;
  /** Only for 'step-stores-input': the last input token (else 0). */
  last: tf.Tensor2D | number;
}

type SaveFunc = (tensors: tf.Tensor[]) => void;

/** x [..., D] → x Wᵀ [..., D]. */
function project<T extends tf.Tensor>(x: T, weight: tf.Tensor): T {
  const d = x.shape[x.rank - 1] as number;
  const flat = x.reshape([-1, d]) as tf.Tensor2D;
  return tf.matMul(flat, weight as tf.Tensor2D, false, true).reshape(x.shape) as T;
}

const wrongTanh = tf.customGrad((x, save) => {
  const y = tf.tanh(x as tf.Tensor);
  (save as SaveFunc)([y]);
  return {
    value: y,
    gradFunc: (dy, saved) => {
      const [out] = saved as [tf.Tensor];
      return dy.mul(tf.onesLike(out).sub(out)); // should be 1 − out²
    },
  };
});

const signFlippedTanh = tf.customGrad((x, save) => {
  const y = tf.tanh(x as tf.Tensor);
  (save as SaveFunc)([y]);
  return {
    value: y,
    gradFunc: (dy, saved) => {
      const [out] = saved as [tf.Tensor];
      return dy.mul(out.square().sub(1)); // should be 1 − out²
    },
  };
});

/** project(h, W) with dh right and dW transposed. */
const projectTransposedGrad = tf.customGrad((h, weight, save) => {
  const hh = h as tf.Tensor3D;
  const w = weight as tf.Tensor2D;
  (save as SaveFunc)([hh, w]);
  return {
    value: project(hh, w),
    gradFunc: (dy, saved) => {
      const [input, wSaved] = saved as [tf.Tensor3D, tf.Tensor2D];
      const d = wSaved.shape[0];
      const dh = project(dy as tf.Tensor3D, wSaved.transpose());
      const dw = tf.matMul(dy.reshape([-1, d]) as tf.Tensor2D, input.reshape([-1, d]) as tf.Tensor2D, true, false);
      return [dh, dw.transpose()]; // should be dw
    },
  };
});

class ToyMixer implements Mixer<ToyState> {
  private readonly weight: tf.Variable;
  private readonly bias: tf.Variable | null = null;

  constructor(
    context: BlockContext,
    private readonly config: ToyConfig,
    private readonly bug: ToyBug,
  ) {
    const { dModel, params } = context;
    const init: Initializer =
      bug === 'unseeded-init'
        ? (_rng, shape) => Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => Math.random() - 0.5)
        : fanInUniformInit(dModel);
    this.weight = params.create('weight', [dModel, dModel], init);
    if (bug === 'unused-parameter' || bug === 'faint-bias') {
      this.bias = params.create('bias', [dModel], fanInUniformInit(dModel));
    }
  }

  forward(x: tf.Tensor3D): tf.Tensor3D {
    if (this.bug === 'forward-leak') tf.keep(tf.zeros([1]));
    return tf.tidy(() => {
      const length = x.shape[1];
      let input: tf.Tensor3D = this.bug === 'ignores-input' ? tf.onesLike(x) : x;
      if (this.bug === 'look-ahead') {
        const next = tf.concat(
          [input.slice([0, 1, 0], [-1, length - 1, -1]), tf.zerosLike(input.slice([0, 0, 0], [-1, 1, -1]))],
          1,
        );
        input = input.add(next.mul(0.5));
      }
      if (this.bug === 'global-norm') input = input.div(input.square().mean([1, 2], true).sqrt());
      const counts = tf.range(1, length + 1).reshape([1, length, 1]);
      const mean = runningSum(input, this.bug === 'tfjs-cumsum-axis-1').div(counts) as tf.Tensor3D;
      return this.head(mean, x);
    });
  }

  initState(batchSize: number): ToyState {
    const dModel = this.weight.shape[0] as number;
    return {
      sum: tf.zeros([batchSize, dModel]),
      count: 0,
      marker: this.bug === 'step-shares-state' ? tf.ones([1]) : 0,
      last: 0,
    };
  }

  step(x: tf.Tensor2D, state: ToyState): { y: tf.Tensor2D; state: ToyState } {
    if (this.bug === 'step-leak') tf.keep(tf.zeros([1]));
    const result = tf.tidy(() => {
      const input = this.bug === 'ignores-input' ? tf.onesLike(x) : x;
      const carried = this.bug === 'step-drift' ? state.sum.mul(0.999) : state.sum;
      const sum = carried.add(input) as tf.Tensor2D;
      const count = state.count + 1;
      const y = this.head(sum.div(count).expandDims(1) as tf.Tensor3D, x.expandDims(1) as tf.Tensor3D).squeeze([1]);
      return { y: y as tf.Tensor2D, sum };
    });
    const next: ToyState = {
      sum: result.sum,
      count: state.count + 1,
      marker: state.marker,
      last: this.bug === 'step-stores-input' ? x : 0,
    };
    if (this.bug === 'step-disposes-state') tf.dispose(state);
    return { y: result.y, state: next };
  }

  /** gain · tanh(W mean) (+ the residual of the 'missing-input-grad-term' bug). */
  private head(mean: tf.Tensor3D, x: tf.Tensor3D): tf.Tensor3D {
    const weight = this.bug === 'detached-weight' ? tf.tensor(this.weight.dataSync(), this.weight.shape) : this.weight;
    let pre: tf.Tensor3D;
    if (this.bug === 'transposed-weight-grad') pre = projectTransposedGrad(mean, weight) as tf.Tensor3D;
    else pre = project(mean, weight);
    if (this.bug === 'faint-bias' && this.bias !== null) pre = pre.add(this.bias.mul(1e-7));
    let y: tf.Tensor3D;
    if (this.bug === 'wrong-tanh-grad') y = wrongTanh(pre) as tf.Tensor3D;
    else if (this.bug === 'sign-flipped-grad') y = signFlippedTanh(pre) as tf.Tensor3D;
    else y = tf.tanh(pre);
    if (this.bug === 'missing-input-grad-term') y = withForgottenResidual(y, x);
    return y.mul(this.config.gain);
  }
}

/**
 * Σ_{s≤t} x_s along axis 1. tfjs 4.22's Cumsum gradient is wrong for any axis but the last (it
 * transposes its result without having transposed dy), so the sum runs over the last axis;
 * `viaAxis1` uses tf.cumsum(x, 1) directly, to show the gradient check catching that.
 */
function runningSum(x: tf.Tensor3D, viaAxis1: boolean): tf.Tensor3D {
  if (viaAxis1) return tf.cumsum(x, 1);
  return tf.cumsum(x.transpose([0, 2, 1]), 2).transpose([0, 2, 1]);
}

/** y + 0.5·x, whose backward pass forgets the 0.5·dy that belongs to x. */
function withForgottenResidual(y: tf.Tensor3D, x: tf.Tensor3D): tf.Tensor3D {
  const op = tf.customGrad((a, b) => ({
    value: (a as tf.Tensor).add((b as tf.Tensor).mul(0.5)),
    gradFunc: (dy) => [dy, tf.zerosLike(dy)], // should be [dy, 0.5·dy]
  }));
  return op(y, x) as tf.Tensor3D;
}

export function toyBlock(bug: ToyBug = 'none'): BlockDefinition<ToyConfig> {
  return {
    name: bug === 'none' ? 'toy-cumulative-mean' : `toy-${bug}`,
    description: 'y_t = gain · tanh(W · mean(x_≤t)), with one deliberate bug',
    schema: toySchema,
    create: (context, config) => new ToyMixer(context, config, bug),
    // running sum, ÷ count, W·mean, tanh, · gain (the bugs' extra terms are not counted)
    flops: (_config, { dModel }) =>
      sumFlops(pointwiseFlops(2 * dModel), linearFlops(dModel, dModel), pointwiseFlops(2 * dModel)),
    // The running sum: d_model float32 numbers (the count is a plain number).
    stateBytes: (_config, { dModel }) => float32State(bug === 'undercounted-state' ? dModel / 2 : dModel),
  };
}
