import { availableParallelism } from 'node:os';
import {
  type BackendChoice,
  backendFromEnvironment,
  capabilitiesOf,
  configHash,
  LanguageModel,
  type LoadedConfig,
  SeededRandom,
  selectBackend,
  type Task,
} from '@interleave/core';
import type { LoadedExperiment } from '../config/experiment-config.js';
import { BATCH_WORKER_AUTO_STEPS, MAX_AUTO_BATCH_THREADS, type TrainConfig } from '../config/train-schema.js';
import { BatchWorker, batchRecipeOf } from '../trainer/batch-worker.js';
import type { ProgressStream } from '../trainer/progress.js';
import { Trainer } from '../trainer/trainer.js';
import type { PreparedRun } from './prepare-run.js';

/** The live parts of a run, built from a prepared config on the chosen backend. */
export interface AssembledRun {
  readonly model: LanguageModel;
  readonly task: Task;
  readonly trainer: Trainer;
  /** Analytic FLOPs per training token at the task's sequence length, rounded to whole FLOPs. */
  readonly flops: { readonly total: number; readonly forward: number };
  /** The recurrent state per sequence at the training length: the x-axis of accuracy vs. state size. */
  readonly state: { readonly bytes: number; readonly growsWithLength: boolean };
  /** The hash of the resolved config: names the config in checkpoints and on resume. */
  readonly configHash: string;
  /** Frees the model's and the optimizer's tensors. */
  dispose(): void;
}

/** `INTERLEAVE_BACKEND` if set, else the config's `backend`; prints the choice. */
export async function selectRunBackend(loaded: LoadedConfig, out: ProgressStream): Promise<BackendChoice> {
  const environmentBackend = backendFromEnvironment();
  const backend = await selectBackend(
    environmentBackend ?? loaded.config.backend,
    environmentBackend ? 'INTERLEAVE_BACKEND' : `${loaded.label} (backend: ${loaded.config.backend})`,
  );
  out.write(`backend: ${backend.detail}\n`);
  return backend;
}

/** model → trainer: builds the seeded model, the task and the trainer for a prepared config. */
export function assembleRun(prepared: PreparedRun, backend: BackendChoice): AssembledRun {
  const { loaded, container, layers, task } = prepared;
  const { config } = loaded;
  const model = LanguageModel.build({
    container,
    config: config.model,
    layers,
    rng: new SeededRandom(config.seed),
    backend: capabilitiesOf(backend.name),
  });
  const taskInstance = task.definition.create(task.config, { vocabSize: config.model.vocab_size, seed: config.seed });
  const trainer = new Trainer(model, taskInstance, config.train, { batchWorker: batchWorkerFor(loaded, backend.name) });
  // Training compute (docs/design.md#flop-counting): forward+backward FLOPs per token, rounded
  // to whole FLOPs (Hyena's FFT and attention's average window are fractional).
  const modelFlops = model.flopsPerToken(taskInstance.seqLen);
  return {
    model,
    task: taskInstance,
    trainer,
    flops: { total: Math.round(modelFlops.total), forward: Math.round(modelFlops.forward) },
    state: model.stateBytesPerSequence(taskInstance.seqLen),
    configHash: configHash(loaded.resolved),
    dispose() {
      trainer.dispose();
      model.dispose();
    },
  };
}

/** A batch worker for `loaded`'s run on `backend` if its `train.batch_worker` asks for one. */
export function batchWorkerFor(loaded: LoadedExperiment, backend: string): BatchWorker | undefined {
  const { train } = loaded.config;
  return wantsBatchWorker(train, backend)
    ? new BatchWorker(batchRecipeOf(loaded), { threads: batchThreadsFor(train) })
    : undefined;
}

/** The threads `train.batch_threads` asks for on this machine (train-schema.ts says how `auto` counts). */
export function batchThreadsFor(train: TrainConfig, cores = availableParallelism()): number {
  if (train.batch_threads !== 'auto') return train.batch_threads;
  return Math.max(1, Math.min(MAX_AUTO_BATCH_THREADS, cores - 2));
}

/** Whether `train.batch_worker` asks for a batch worker on `backend` (train-schema.ts says why). */
export function wantsBatchWorker(train: TrainConfig, backend: string): boolean {
  if (train.batch_worker !== 'auto') return train.batch_worker === 'on';
  return backend === 'webgpu' && train.steps >= BATCH_WORKER_AUTO_STEPS;
}
