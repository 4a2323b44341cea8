import { Worker } from 'node:worker_threads';
import { derivationsKey } from '@interleave/core';
import type { LoadedExperiment } from '../config/experiment-config.js';
import type { BatchRecipe, DerivedUploads, FromBatchWorker } from './batch-worker-messages.js';
import { type StepData, stepDataOf } from './step-data.js';

export type { BatchRecipe } from './batch-worker-messages.js';

/** Batches asked for beyond the one a step needs now. */
const DEFAULT_AHEAD = 3;

/** The recipe for `loaded`'s task: its config data, with where each plugin was named. */
export function batchRecipeOf(loaded: LoadedExperiment): BatchRecipe {
  const { config } = loaded;
  return {
    label: loaded.label,
    plugins: config.plugins,
    pluginLocations: config.plugins.map((_, index) => loaded.locate(['plugins', index])),
    task: config.task,
    vocabSize: config.model.vocab_size,
    seed: config.seed,
    batchSize: config.train.batch_size,
    steps: config.train.steps,
    headRows: config.train.head_rows,
  };
}

/**
 * Draws training batches on a worker thread, a few ahead of the step that needs them
 * (`train.batch_worker`). On the H200 the main thread is the bottleneck of small models: drawing
 * Zoology's MQAR batch (512 × 64) took 2.5 ms of a 5.4 ms step there, longer than the GPU's whole
 * step. Batches are pure functions of their index and the seed, so which thread draws one changes
 * nothing but when.
 *
 * The worker builds the task from config data through the same container as the main thread. If
 * it cannot (it failed to start, or a batch threw there), `take` answers undefined and the trainer
 * draws that batch itself: an error in the task is then raised on the main thread, at the step that
 * needed the batch, as without a worker.
 */
export class BatchWorker {
  private readonly worker: Worker;
  /** Batches asked for and not yet taken, by index: their data, or undefined where the worker failed. */
  private readonly requested = new Map<number, Promise<StepData | undefined>>();
  private readonly settle = new Map<number, (data: StepData | undefined) => void>();
  private unavailable: string | undefined;
  /** The derivations last sent to the worker (`deriveUploads`). */
  private derivationKey: string | undefined;
  private derivedWith = 0;
  private drawn = 0;

  constructor(
    private readonly recipe: BatchRecipe,
    private readonly ahead = DEFAULT_AHEAD,
  ) {
    this.worker = new Worker(new URL('./batch-worker.mjs', import.meta.url), { workerData: recipe });
    this.worker.unref();
    this.worker.on('message', (message: FromBatchWorker) => this.receive(message));
    this.worker.on('error', (error) => this.fail(`the batch worker stopped: ${error.message}`));
    this.worker.on('exit', () => this.fail('the batch worker exited'));
  }

  /** How batches are drawn, for the run's summary. */
  get status(): string {
    if (this.unavailable !== undefined) return `on the main thread (${this.unavailable})`;
    const derived = this.derivedWith > 0 ? `, ${this.derivedWith} with the step's derived uploads` : '';
    return `on a worker thread, up to ${this.ahead} ahead (${this.drawn} drawn there${derived})`;
  }

  /** Asks for batch `index` and the `ahead` after it, those not asked for yet. */
  request(index: number): void {
    // Never past the run's last batch, except the one asked for (a probe may step beyond).
    const last = Math.max(index, Math.min(index + this.ahead, this.recipe.steps - 1));
    for (let next = index; next <= last; next++) {
      if (this.requested.has(next)) continue;
      if (this.unavailable !== undefined) return;
      this.requested.set(
        next,
        new Promise((resolve) => {
          this.settle.set(next, resolve);
        }),
      );
      this.worker.postMessage({ kind: 'draw', index: next });
    }
    // Referenced while answers are owed, so that a trainer awaiting one keeps the process alive.
    this.worker.ref();
  }

  /**
   * Batch `index` from the worker (asking for it and the next ones if needed), or undefined when
   * the worker could not draw it. Forgets batches before `index` (a resumed run jumps ahead).
   */
  async take(index: number): Promise<StepData | undefined> {
    if (this.unavailable !== undefined) return undefined;
    for (const earlier of this.requested.keys()) if (earlier < index) this.forget(earlier);
    this.request(index);
    const data = await this.requested.get(index);
    this.forget(index);
    return data;
  }

  /**
   * Has the worker compute a replayed step's derived uploads (the embedding gradient's sort of
   * the token ids) with every batch it draws from now on; batches drawn before come without them.
   */
  deriveUploads(uploads: DerivedUploads['uploads']): void {
    const key = derivationsKey(uploads);
    if (key === this.derivationKey || this.unavailable !== undefined) return;
    this.derivationKey = key;
    this.worker.postMessage({ kind: 'derive', key, uploads });
  }

  /** Stops the thread; batches still owed are answered undefined. */
  async dispose(): Promise<void> {
    this.fail('disposed');
    await this.worker.terminate();
  }

  private forget(index: number): void {
    this.requested.delete(index);
    this.settle.delete(index);
    if (this.settle.size === 0) this.worker.unref();
  }

  private receive(message: FromBatchWorker): void {
    if (message.kind === 'ready') return;
    if (message.kind === 'unavailable') {
      this.fail(`the worker could not build the task: ${message.reason}`);
      return;
    }
    const resolve = this.settle.get(message.index);
    this.settle.delete(message.index);
    if (this.settle.size === 0) this.worker.unref();
    if (message.kind === 'failed') {
      resolve?.(undefined);
      return;
    }
    this.drawn += 1;
    const { batchSize, seqLen, inputs, targets, mask, rows, derived } = message;
    if (derived !== undefined) this.derivedWith += 1;
    resolve?.(stepDataOf({ batchSize, seqLen, inputs, targets, mask }, rows, derived));
  }

  /** Answers every owed batch undefined; later `take`s answer undefined at once. */
  private fail(reason: string): void {
    this.unavailable ??= reason;
    for (const resolve of this.settle.values()) resolve(undefined);
    this.settle.clear();
    this.worker.unref();
  }
}
