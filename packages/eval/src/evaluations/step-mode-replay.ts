import {
  type LanguageModel,
  type MixerState,
  type ModelState,
  type RecordedStep,
  recordWebgpuStep,
  throwIfWebgpuFailed,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';

/**
 * Step mode with the per-token step recorded once at the Dawn level and replayed without tfjs
 * (core's webgpu-step-replay.ts, the mechanism the trainer's `train.step_replay` uses).
 *
 * Why: one `step` of a small model is ~100 tfjs ops, each ~30–80 µs of CPU on the H200 against a
 * few µs of GPU work, so step mode at 2^16–2^20 tokens is CPU-bound by tfjs (the Mamba induction
 * model ran ~200 steps/s at batch 1,000). A replay re-issues the recorded dispatches with the new
 * token column written into the buffer the recording read it from.
 *
 * When it is valid: the step must issue the same commands at every position, with only the token
 * column and the state's contents changing. That holds for mixers whose state is tensors of a
 * fixed shape (Mamba) or whose numbers stop mattering at a declared position (RG-LRU after its
 * first token: `Mixer.stepStationaryFrom`); it fails for a step that keeps reading a position
 * (attention's RoPE and ring slot, learned absolute positions: never tried) and for a state that
 * grows (Hyena's history: refused when its shape changes). So two consecutive steps are recorded
 * at a position past the model's `stepStationaryFrom` (tried again further on if the state still
 * grew), and the plan is kept only when the state came back with the same shapes and the two
 * recordings wrote the same bytes everywhere but the token column (`RecordedStep.differenceFrom`).
 * Otherwise the batch continues through tfjs. Either way the predictions are those of the same
 * kernels on the same data.
 */

/** Positions at which a recording of two consecutive steps is tried, in order. */
const RECORD_AT = [2, 16, 128, 1024] as const;
/** Replays submitted between two waits for the GPU: bounds the work queued ahead of it. */
const REPLAYS_PER_WAIT = 64;

/** Whether step-mode evaluations replay recorded steps on webgpu. */
export type StepModeReplaySetting = 'auto' | 'off';

/** A model state's tensors in visiting order, with a signature of their paths, shapes and dtypes. */
interface FlatState {
  readonly tensors: tf.Tensor[];
  /** Equal before and after a step when the state keeps its shape (a growing cache does not). */
  readonly signature: string;
}

function flatten(state: ModelState): FlatState {
  const tensors: tf.Tensor[] = [];
  const parts: string[] = [];
  const visit = (value: MixerState | tf.Tensor | number, path: string): void => {
    // Numbers (RG-LRU's token count) are left out: `LanguageModel.stepStationaryFrom` says from
    // which position their values no longer matter, and recordings start there.
    if (typeof value === 'number') return;
    if (value instanceof tf.Tensor) {
      tensors.push(value);
      parts.push(`${path}:${value.dtype}[${value.shape.join(',')}]`);
    } else for (const [key, inner] of Object.entries(value)) visit(inner, `${path}.${key}`);
  };
  for (const [index, layer] of state.layers.entries()) visit(layer, `${index}`);
  return { tensors, signature: parts.join(' ') };
}

/** `state` with its tensors, in visiting order, replaced by `tensors`. */
function rebuild(state: ModelState, tensors: readonly tf.Tensor[], position: number): ModelState {
  let next = 0;
  const visit = (value: MixerState): MixerState => {
    const copy: Record<string, tf.Tensor | number | MixerState> = {};
    for (const [key, inner] of Object.entries(value)) {
      if (typeof inner === 'number') copy[key] = inner;
      else if (inner instanceof tf.Tensor) copy[key] = tensors[next++] as tf.Tensor;
      else copy[key] = visit(inner);
    }
    return copy;
  };
  return { layers: state.layers.map(visit), position };
}

/** The plan of a batch's replays, once two recorded steps agreed. */
export interface ReplayedSteps {
  readonly plan: RecordedStep;
  /** Replays submitted so far with this plan. */
  submitted: number;
}

/**
 * One evaluation's replay decisions, shared by its batches, so that a step that cannot be recorded
 * at all (a refusal that does not depend on the position) is tried once, not once per batch.
 */
export class StepModeReplay {
  /** Why no step of this evaluation can be recorded, once known. */
  private refusal: string | undefined;
  /** Why the last pair of recordings was not kept (the position mattered), for the status. */
  private lastMiss: string | undefined;
  private replayed = 0;
  private dispatches = 0;

  constructor(private readonly setting: StepModeReplaySetting = 'auto') {}

  /** 'replayed N steps (D dispatches a step)', 'off: why', or 'not replayed: why'. */
  get status(): string {
    if (this.setting === 'off') return 'off: step_replay is off';
    if (this.replayed > 0) return `replayed ${this.replayed} steps (${this.dispatches} dispatches a step)`;
    if (this.refusal !== undefined) return `off: ${this.refusal}`;
    if (tf.getBackend() !== 'webgpu') return 'off: the backend is not webgpu';
    return `not replayed: ${this.lastMiss ?? 'no sequence was long enough to record'}`;
  }

  /**
   * Whether a batch of `seqLen` tokens with no plan yet should record the steps at `position` and
   * the next, for `model` in `state` (at `position`).
   */
  shouldRecordAt(model: LanguageModel, state: ModelState, position: number, seqLen: number): boolean {
    if (this.setting === 'off' || this.refusal !== undefined || tf.getBackend() !== 'webgpu') return false;
    // Two recorded steps and at least as many replays before the last token, or it is not worth it.
    if (!(RECORD_AT as readonly number[]).includes(position) || position + 4 > seqLen - 1) return false;
    const from = model.stepStationaryFrom(state);
    if (from === undefined) {
      this.refusal =
        "a layer's step keeps reading a position from its state (attention, sliding windows) or the model adds learned positions";
      return false;
    }
    return position >= from;
  }

  /**
   * Runs the steps at `position` and `position + 1` (tokens `columns[0]`, `columns[1]`), recording
   * both (only the first, `steps: 1`, when it cannot be replayed). Consumes `state`; returns the state
   * after the steps run and, if the recordings agree, the plan that replays every later step (its
   * state is then held in variables the replays update).
   */
  recordPair(
    model: LanguageModel,
    state: ModelState,
    position: number,
    columns: readonly [Int32Array, Int32Array],
  ): { state: ModelState; replays: ReplayedSteps | undefined; steps: 1 | 2 } {
    const first = this.recordStep(model, state, position, columns[0]);
    if (first.plan === undefined) return { state: first.state, replays: undefined, steps: 1 };
    // The first recording only vouches for the second: its buffers go back now.
    first.plan.dispose();
    const second = this.recordStep(model, first.state, position + 1, columns[1]);
    if (second.plan === undefined) return { state: second.state, replays: undefined, steps: 2 };
    const difference = second.plan.differenceFrom(first.plan);
    if (difference !== undefined) {
      second.plan.dispose();
      this.lastMiss = `the steps at ${position} and ${position + 1} differ: ${difference}`;
      return { state: second.state, replays: undefined, steps: 2 };
    }
    this.dispatches = second.plan.dispatchCount;
    return { state: second.state, replays: { plan: second.plan, submitted: 0 }, steps: 2 };
  }

  /** Replays one step on token column `column`; every REPLAYS_PER_WAIT-th waits for the GPU. */
  async replayStep(replays: ReplayedSteps, column: Int32Array): Promise<void> {
    replays.submitted += 1;
    this.replayed += 1;
    const wait = replays.submitted % REPLAYS_PER_WAIT === 0;
    await replays.plan.replay([column], wait);
    if (wait) throwIfWebgpuFailed('evaluation');
  }

  /** Replays the last step on `column` and returns its logits, [rows × vocab] row-major. */
  async replayLast(replays: ReplayedSteps, column: Int32Array): Promise<Float32Array> {
    replays.submitted += 1;
    this.replayed += 1;
    const logits = await replays.plan.replay([column], true);
    throwIfWebgpuFailed('evaluation');
    return logits;
  }

  /**
   * One step through tfjs, recorded. `state`'s tensors are consumed. `plan` is undefined when the
   * step cannot be replayed: a refusal (kept for the whole evaluation) or a state that changed shape
   * (this position only; a later one may be past the growth).
   */
  private recordStep(
    model: LanguageModel,
    state: ModelState,
    position: number,
    column: Int32Array,
  ): { state: ModelState; plan: RecordedStep | undefined } {
    const before = flatten(state);
    // The recording takes the state as variables: a step reassigns them, and a replay copies the
    // new values back onto the buffers it reads them from.
    const variables = before.tensors.map((tensor) => tf.variable(tensor, false));
    tf.dispose(before.tensors);
    const held = rebuild(state, variables, position);
    const tokens = tf.tensor1d(column, 'int32');
    let output: tf.Tensor | undefined;
    let moved: ModelState | undefined;
    /** The stepped state, for its numbers (its tensors are disposed once the variables took them). */
    let stepped: ModelState = state;
    try {
      const recording = recordWebgpuStep({ inputs: [tokens], state: variables }, () => {
        const { logits, state: next } = model.step(tokens, held);
        output = logits;
        const after = flatten(next);
        if (after.signature === before.signature) {
          after.tensors.forEach((tensor, index) => {
            (variables[index] as tf.Variable).assign(tensor);
          });
          tf.dispose(after.tensors);
          stepped = next;
        } else moved = next;
        return { value: undefined, output: logits };
      });
      if (moved !== undefined) {
        recording.plan?.dispose();
        tf.dispose(variables);
        this.lastMiss = `the state changes shape at position ${position}`;
        return { state: moved, plan: undefined };
      }
      if (recording.plan === undefined) this.refusal = recording.refusal ?? 'the step could not be recorded';
      return { state: rebuild(stepped, variables, position + 1), plan: recording.plan };
    } catch (error) {
      tf.dispose(variables);
      throw error;
    } finally {
      tokens.dispose();
      output?.dispose();
    }
  }
}
