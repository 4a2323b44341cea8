import { InterleaveError } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';

/**
 * Ends a run at the first step whose numbers stopped meaning anything, instead of training on
 * NaN weights to a "final accuracy". The happy path reads nothing more than the trainer already
 * does (loss and global gradient norm); only a non-finite norm pays for a search of the gradients.
 */
export async function checkStepHealth(
  step: number,
  loss: number,
  gradNorm: number,
  /** Names the first non-finite gradient (called only when the norm is not finite). */
  findNonFinite: () => Promise<string | undefined>,
): Promise<void> {
  if (!Number.isFinite(loss)) {
    throw new InterleaveError(`loss became ${loss} at step ${step}; lower train.optimizer.lr`);
  }
  if (Number.isFinite(gradNorm)) return;
  const culprit = await findNonFinite();
  throw new InterleaveError(
    `the gradient norm became ${gradNorm} at step ${step} while the loss was ${loss.toFixed(4)}` +
      `${culprit === undefined ? '' : `; first non-finite gradient: ${culprit}`}` +
      '; lower train.optimizer.lr, or check that block’s backward pass',
  );
}

/** The first tensor (in the record's order: the model's parameter order) with a NaN or ±Infinity. */
export async function firstNonFinite(tensors: Readonly<Record<string, tf.Tensor>>): Promise<string | undefined> {
  for (const [name, tensor] of Object.entries(tensors)) {
    const allFinite = tf.tidy(() => tf.isFinite(tensor).all());
    const finite = (await allFinite.data())[0] === 1;
    allFinite.dispose();
    if (!finite) return name;
  }
  return undefined;
}
