import type { NamedParameter } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { fusedAdamWAvailable, fusedAdamWUpdate } from './adamw-wgsl.js';

export interface AdamWOptions {
  betas: readonly [number, number];
  eps: number;
  weightDecay: number;
}

interface Moments {
  readonly parameter: NamedParameter;
  readonly firstMoment: tf.Variable;
  readonly secondMoment: tf.Variable;
}

/**
 * AdamW (Loshchilov & Hutter) as PyTorch implements it: the decay is decoupled
 * (p ← p − lr·wd·p before the Adam update) and applies only to parameters marked `decay`
 * (norms, biases, `A_log` and `D` are not). On webgpu each parameter's update is one fused
 * dispatch (adamw-wgsl.ts) with the same arithmetic.
 */
export class AdamW {
  private readonly moments: Moments[];
  /** Number of updates applied so far (PyTorch's `step`). */
  stepCount = 0;

  constructor(
    parameters: readonly NamedParameter[],
    private readonly options: AdamWOptions,
  ) {
    this.moments = parameters.map((parameter) => ({
      parameter,
      firstMoment: zeroVariableLike(parameter.variable),
      secondMoment: zeroVariableLike(parameter.variable),
    }));
  }

  /**
   * The values one update reads besides its tensors, as float32 — [lr, 1 − lr·wd, 1 − β1^t,
   * 1 − β2^t, 1] for update `t` (1-based) — the contents of the fused kernel's `stepScalars`. The
   * last is the factor every gradient is scaled by: 1 here; gradient-norm-wgsl.ts writes a copy
   * with the clip factor in.
   */
  stepScalars(learningRate: number, step: number): Float32Array {
    const [beta1, beta2] = this.options.betas;
    return Float32Array.from([
      learningRate,
      1 - learningRate * this.options.weightDecay,
      1 - beta1 ** step,
      1 - beta2 ** step,
      1,
    ]);
  }

  /**
   * Counts an update applied elsewhere (a replayed training step, whose fused kernels read the
   * returned scalars) and returns its step scalars.
   */
  countReplayedUpdate(learningRate: number): Float32Array {
    this.stepCount += 1;
    return this.stepScalars(learningRate, this.stepCount);
  }

  /**
   * Applies one update; `gradients` maps parameter names to gradients (not disposed here).
   * `scalars`, when given, is the tensor of `stepScalars(learningRate, stepCount + 1)` (a recorded
   * step names it as an input), or `fusedGradientScale`'s copy of it, whose entry 4 then scales
   * every gradient (the clip, applied by the kernel as it reads the gradient); otherwise one is made
   * here. Only the fused kernel reads `scalars`.
   */
  apply(gradients: Readonly<Record<string, tf.Tensor>>, learningRate: number, scalars?: tf.Tensor1D): void {
    this.stepCount += 1;
    const [beta1, beta2] = this.options.betas;
    const correction1 = 1 - beta1 ** this.stepCount;
    const correction2 = 1 - beta2 ** this.stepCount;
    const fused = fusedAdamWAvailable();
    tf.tidy(() => {
      const stepScalars = fused ? (scalars ?? tf.tensor1d(this.stepScalars(learningRate, this.stepCount))) : undefined;
      for (const { parameter, firstMoment, secondMoment } of this.moments) {
        const gradient = gradients[parameter.name];
        if (gradient === undefined) continue;
        if (stepScalars !== undefined) {
          const [next, m, v] = fusedAdamWUpdate(parameter.variable, gradient, firstMoment, secondMoment, stepScalars, {
            beta1,
            beta2,
            eps: this.options.eps,
            decays: parameter.decay && this.options.weightDecay > 0,
          });
          firstMoment.assign(m);
          secondMoment.assign(v);
          parameter.variable.assign(next);
          continue;
        }
        const m = firstMoment.mul(beta1).add(gradient.mul(1 - beta1));
        const v = secondMoment.mul(beta2).add(gradient.square().mul(1 - beta2));
        firstMoment.assign(m);
        secondMoment.assign(v);
        const decayed =
          parameter.decay && this.options.weightDecay > 0
            ? parameter.variable.mul(1 - learningRate * this.options.weightDecay)
            : parameter.variable;
        const denominator = v.div(correction2).sqrt().add(this.options.eps);
        parameter.variable.assign(decayed.sub(m.div(denominator).mul(learningRate / correction1)));
      }
    });
  }

  /** Every variable an update reassigns: the parameters and their moments. */
  stateVariables(): tf.Variable[] {
    return this.moments.flatMap(({ parameter, firstMoment, secondMoment }) => [
      parameter.variable,
      firstMoment,
      secondMoment,
    ]);
  }

  /** Moment tensors by name (`<param>.exp_avg`, `<param>.exp_avg_sq`), for checkpoints. */
  stateTensors(): Record<string, tf.Variable> {
    const out: Record<string, tf.Variable> = {};
    for (const { parameter, firstMoment, secondMoment } of this.moments) {
      out[`${parameter.name}.exp_avg`] = firstMoment;
      out[`${parameter.name}.exp_avg_sq`] = secondMoment;
    }
    return out;
  }

  dispose(): void {
    for (const { firstMoment, secondMoment } of this.moments) {
      firstMoment.dispose();
      secondMoment.dispose();
    }
  }
}

function zeroVariableLike(tensor: tf.Tensor): tf.Variable {
  const zeros = tf.zerosLike(tensor);
  const variable = tf.variable(zeros, false);
  zeros.dispose();
  return variable;
}
