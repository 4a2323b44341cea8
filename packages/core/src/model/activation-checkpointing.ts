import * as tf from '@tensorflow/tfjs';

/**
 * What the training forward keeps for the backward pass (`train.activation_checkpointing`):
 * `none` keeps every intermediate of every layer on the gradient tape; `layers` keeps only each
 * residual layer's input and recomputes the layer's forward during the backward pass (about one
 * extra forward per step, for activation memory that no longer grows with the depth's
 * intermediates). The results are the same either way.
 */
export const ACTIVATION_CHECKPOINTING = ['none', 'layers'] as const;
export type ActivationCheckpointing = (typeof ACTIVATION_CHECKPOINTING)[number];

/**
 * `layer(x)` whose backward recomputes it: the forward runs off the gradient tape and keeps only
 * `x`; the backward runs `layer` again on that input under a fresh tape and takes the gradients of
 * `dy` with respect to the input and to `parameters`. The parameters are explicit inputs of the
 * custom gradient so that tfjs routes their gradients to the caller's tape (the layer reads them
 * from its closure, as every block does). They must be every variable `layer` reads whose
 * gradient is wanted: a variable it reads but is not listed gets no gradient from this layer.
 * `layer` must be deterministic (it runs twice) and may contain custom gradients of its own.
 */
export function recomputedInBackward<T extends tf.Tensor>(
  layer: (x: T) => T,
  x: T,
  parameters: readonly tf.Variable[],
): T {
  const checkpointed = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const input = args[0] as T;
    const save = args[args.length - 1] as tf.GradSaveFunc;
    save([input]);
    return {
      value: layer(input),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => gradientsByRecomputing(layer, saved[0] as T, parameters, dy),
    };
  });
  return checkpointed(x, ...parameters) as T;
}

/** [d input, d parameter…] of `layer` at `input` against `dy`; zeros for a parameter it does not read. */
function gradientsByRecomputing<T extends tf.Tensor>(
  layer: (x: T) => T,
  input: T,
  parameters: readonly tf.Variable[],
  dy: tf.Tensor,
): tf.Tensor[] {
  const engine = tf.engine();
  // The recompute records a tape of its own while the caller's backward pass is still walking
  // its tape. tfjs keeps one active tape: a nested `gradients` call at gradient depth 0 replaces
  // it and, when done, drops it. The caller's tape is put back, so that the caller still
  // releases the tensors its nodes saved once its own backward pass ends.
  const callerTape = engine.state.activeTape;
  try {
    // tfjs calls a custom gradient outside any scope of its own; this one frees the recomputed
    // layer's output and its intermediates before the next layer's backward runs.
    return tf.tidy(() => {
      const wrt: tf.Tensor[] = [input, ...parameters];
      const { grads } = engine.gradients(() => layer(input), wrt, dy, true);
      return wrt.map((tensor, index) => grads[index] ?? tf.zerosLike(tensor));
    });
  } finally {
    engine.state.activeTape = callerTape;
  }
}
