import type { RecordedStep } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';

/** How the trainer runs its next step. */
export type StepMode = 'tfjs' | 'record' | 'replay';

/** Steps run through tfjs before the first recording: one-time work (pipeline builds, cached tables) happens there. */
const WARM_UP_STEPS = 1;

/**
 * When the trainer records and replays its steps on webgpu (`train.step_replay`; the mechanism
 * is core's webgpu-step-replay.ts). After the warm-up it records two steps; a replay is trusted
 * only if the two recordings wrote the same bytes everywhere but the declared inputs (the token
 * ids, targets, mask or supervised rows, and the optimiser's step scalars), so nothing else that varies from step to
 * step is replayed stale. Every later step of the recorded batch shape is replayed; another shape
 * runs through tfjs.
 */
export class StepReplayer {
  private earlier: RecordedStep | undefined;
  private plan: RecordedStep | undefined;
  private shape: string | undefined;
  private tfjsSteps = 0;
  /** Why replay is off for this trainer, once decided. */
  private refusal: string | undefined;

  constructor(private readonly setting: 'auto' | 'off') {}

  /** 'replaying (N dispatches in M submits)', 'off: why', or 'not yet recorded'. */
  get status(): string {
    if (this.refusal !== undefined) return `off: ${this.refusal}`;
    if (this.plan !== undefined)
      return `replaying (${this.plan.dispatchCount} dispatches in ${this.plan.submitCount} submits)`;
    return this.setting === 'off' ? 'off: train.step_replay is off' : 'not yet recorded';
  }

  /** The mode of a step whose inputs have the shapes `shape` names (equal keys, equal shapes). */
  modeFor(shape: string): StepMode {
    if (this.setting === 'off' || this.refusal !== undefined || tf.getBackend() !== 'webgpu') return 'tfjs';
    if (this.plan !== undefined) {
      if (!this.plan.stateIntact()) {
        // A restore reassigned the variables: start again from a fresh warm-up.
        this.reset();
        return this.modeFor(shape);
      }
      return shape === this.shape ? 'replay' : 'tfjs';
    }
    if (this.tfjsSteps < WARM_UP_STEPS) return 'tfjs';
    if (this.shape !== undefined && shape !== this.shape) return 'tfjs';
    return 'record';
  }

  /** Counts a step run through tfjs. */
  ranThroughTfjs(): void {
    this.tfjsSteps += 1;
  }

  get current(): RecordedStep | undefined {
    return this.plan;
  }

  /** Takes a recording (or its refusal) of a step whose inputs have the shapes `shape` names. */
  recorded(plan: RecordedStep | undefined, refusal: string | undefined, shape: string): void {
    if (plan === undefined) {
      this.refuse(refusal ?? 'the step could not be recorded');
      return;
    }
    if (this.earlier === undefined) {
      // The first recording only vouches for the second: its buffers go back now.
      plan.dispose();
      this.earlier = plan;
      this.shape = shape;
      return;
    }
    const difference = plan.differenceFrom(this.earlier);
    this.earlier = undefined;
    if (difference !== undefined) {
      plan.dispose();
      this.refuse(difference);
      return;
    }
    this.plan = plan;
  }

  private refuse(why: string): void {
    this.refusal = why;
    process.stderr.write(
      `interleave: training steps run through tfjs, not replayed (${why}); train.step_replay: off skips the attempt\n`,
    );
  }

  reset(): void {
    this.plan?.dispose();
    this.plan = undefined;
    this.earlier = undefined;
    this.shape = undefined;
    this.tfjsSteps = 0;
  }

  dispose(): void {
    this.reset();
  }
}
