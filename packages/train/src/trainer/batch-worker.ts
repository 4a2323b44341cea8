import { Worker } from 'node:worker_threads';
import { derivationsKey } from '@interleave/core';
import type { LoadedExperiment } from '../config/experiment-config.js';
import type { BatchRecipe, DerivedUploads, FromBatchWorker } from './batch-worker-messages.js';
import { type StepData, stepDataOf } from './step-data.js';

export type { BatchRecipe } from './batch-worker-messages.js';

/** Batches asked for beyond the one a step needs now, per thread (at least 3 in all). */
const AHEAD_PER_THREAD = 2;
const MIN_AHEAD = 3;

export interface BatchWorkerOptions {
  /** Worker threads; batch i is drawn by thread i mod `threads` (default 1). */
  threads?: number;
  /** Batches asked for beyond the one a step needs (default: 2 per thread, at least 3). */
  ahead?: number;
}

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
 * Draws training batches on worker threads, a few ahead of the step that needs them
 * (`train.batch_worker`, `train.batch_threads`). On the H200 the main thread is the bottleneck of
 * small models: drawing Zoology's MQAR batch (512 × 64) took 2.5 ms of a 5.4 ms step there, longer
 * than the GPU's whole step; and one worker, drawing and sorting the token ids, took ~5 ms a batch
 * against a ~3 ms step, hence several. Batches are pure functions of their index and the seed, so
 * which thread draws one changes nothing but when.
 *
 * Each thread builds the task from config data through the same container as the main thread. If
 * one cannot (it failed to start, or a batch threw there), `take` answers undefined and the trainer
 * draws that batch itself: an error in the task is then raised on the main thread, at the step that
 * needed the batch, as without a worker. A thread that cannot build the task, stops or exits stops
 * them all: every later batch is drawn on the main thread.
 */
export class BatchWorker {
  private readonly threads: Worker[];
  private readonly ahead: number;
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
    options: BatchWorkerOptions = {},
  ) {
    const count = options.threads ?? 1;
    if (!Number.isInteger(count) || count < 1)
      throw new RangeError(`a batch worker needs 1 or more threads, not ${count}`);
    this.ahead = options.ahead ?? Math.max(MIN_AHEAD, AHEAD_PER_THREAD * count);
    this.threads = Array.from({ length: count }, () => {
      const thread = new Worker(new URL('./batch-worker.mjs', import.meta.url), { workerData: recipe });
      thread.unref();
      thread.on('message', (message: FromBatchWorker) => this.receive(message));
      thread.on('error', (error) => this.fail(`a batch worker thread stopped: ${error.message}`));
      thread.on('exit', () => this.fail('a batch worker thread exited'));
      return thread;
    });
  }

  /** How batches are drawn, for the run's summary. */
  get status(): string {
    if (this.unavailable !== undefined) return `on the main thread (${this.unavailable})`;
    const derived = this.derivedWith > 0 ? `, ${this.derivedWith} with the step's derived uploads` : '';
    const threads = this.threads.length === 1 ? 'a worker thread' : `${this.threads.length} worker threads`;
    return `on ${threads}, up to ${this.ahead} ahead (${this.drawn} drawn there${derived})`;
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
      this.threadFor(next).postMessage({ kind: 'draw', index: next });
    }
    // Referenced while answers are owed, so that a trainer awaiting one keeps the process alive.
    for (const thread of this.threads) thread.ref();
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
    for (const thread of this.threads) thread.postMessage({ kind: 'derive', key, uploads });
  }

  /** Stops the threads; batches still owed are answered undefined. */
  async dispose(): Promise<void> {
    this.fail('disposed');
    await Promise.all(this.threads.map((thread) => thread.terminate()));
  }

  private threadFor(index: number): Worker {
    return this.threads[index % this.threads.length] as Worker;
  }

  private forget(index: number): void {
    this.requested.delete(index);
    this.settle.delete(index);
    if (this.settle.size === 0) this.unrefThreads();
  }

  private unrefThreads(): void {
    for (const thread of this.threads) thread.unref();
  }

  private receive(message: FromBatchWorker): void {
    if (message.kind === 'ready') return;
    if (message.kind === 'unavailable') {
      this.fail(`the worker could not build the task: ${message.reason}`);
      return;
    }
    const resolve = this.settle.get(message.index);
    this.settle.delete(message.index);
    if (this.settle.size === 0) this.unrefThreads();
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
    this.unrefThreads();
  }
}
