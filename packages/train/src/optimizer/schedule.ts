import type { TrainConfig } from '../config/train-schema.js';

/**
 * Learning rate at update `step` (0-based): linear warm-up from lr/warmup to lr over
 * `warmup_steps`, then cosine (or linear, or constant) decay to `min_lr_ratio · lr` at the
 * last step.
 */
export function learningRateAt(step: number, train: Pick<TrainConfig, 'steps' | 'optimizer' | 'schedule'>): number {
  const { lr } = train.optimizer;
  const { warmup_steps: warmup, decay, min_lr_ratio: minRatio } = train.schedule;
  if (step < warmup) return (lr * (step + 1)) / warmup;
  if (decay === 'constant') return lr;
  const decaySteps = Math.max(1, train.steps - warmup - 1);
  const progress = Math.min(1, (step - warmup) / decaySteps);
  const shape = decay === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * progress)) : 1 - progress;
  return lr * (minRatio + (1 - minRatio) * shape);
}
