import { ACTIVATION_CHECKPOINTING } from '@interleave/core';
import { z } from 'zod';

/** `train.optimizer:`: AdamW, the one optimizer the trainer implements. */
export const optimizerSchema = z.strictObject({
  name: z.literal('adamw').default('adamw'),
  lr: z.number().positive(),
  weight_decay: z.number().min(0).default(0.1),
  betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]).default([0.9, 0.98]),
  eps: z.number().positive().default(1e-8),
});

/** `train.schedule:`: linear warm-up, then the decay. */
export const scheduleSchema = z.strictObject({
  warmup_steps: z.number().int().min(0).default(0),
  decay: z.enum(['cosine', 'constant', 'linear']).default('cosine'),
  /** The learning rate at the end of the decay, as a fraction of `lr`. */
  min_lr_ratio: z.number().min(0).max(1).default(0.1),
});

/** `train:`: how long and how the trainer trains. */
export const trainSchema = z.strictObject({
  steps: z.number().int().positive(),
  batch_size: z.number().int().positive(),
  optimizer: optimizerSchema,
  schedule: scheduleSchema.default({ warmup_steps: 0, decay: 'cosine', min_lr_ratio: 0.1 }),
  /** Clip the global gradient norm to this value; `null` turns clipping off. */
  grad_clip: z.number().positive().nullable().default(1.0),
  eval_every: z.number().int().positive().nullable().default(null),
  checkpoint_every: z.number().int().positive().nullable().default(null),
  log_every: z.number().int().positive().default(10),
  /**
   * Steps between the training metrics written to MLflow (train/…, compute/…); the last step and
   * every evaluation step are always written. 1 writes every step: a long run's history grows by 8
   * metric points a step (204,800 steps: ~70 MB in the file store, and as many requests to a server).
   */
  metrics_every: z.number().int().positive().default(1),
  /**
   * `layers`: training steps keep only each residual layer's input and recompute the layer in
   * the backward pass (less memory, about one more forward per step, the same results).
   */
  activation_checkpointing: z.enum(ACTIVATION_CHECKPOINTING).default('none'),
  /**
   * `auto`: on webgpu, record the second and third training steps' GPU commands and, when they
   * differ only in the step's inputs, replay them for every later step of the same shape,
   * without tfjs (the same kernels in the same order: the same losses). `off`: every step through
   * tfjs. No effect on other backends.
   */
  step_replay: z.enum(['auto', 'off']).default('auto'),
  /**
   * `supervised`: when a task supervises under half of a batch's positions (MQAR: its queries),
   * the output head and the loss run on those positions alone; the others add nothing to the
   * loss, so values and gradients are the same (up to summation order). `all`: the head runs on
   * every position, as Zoology's code and the PyTorch peer do.
   */
  head_rows: z.enum(['supervised', 'all']).default('supervised'),
  /**
   * Where training batches are drawn. `on`: on a worker thread, a few steps ahead, which keeps
   * the main thread free to feed the GPU; `off`: on the main thread, while the GPU runs the step
   * before. `auto`: `on` for runs of at least BATCH_WORKER_AUTO_STEPS steps on webgpu, where the
   * main thread bounds small models; elsewhere the cores are the model's, and short runs do not
   * repay the worker's start (it loads the task's code again, about a second). The batches are
   * the same either way.
   */
  batch_worker: z.enum(['auto', 'on', 'off']).default('auto'),
  /**
   * How many worker threads draw batches when `batch_worker` is on; batch i goes to thread
   * i mod n, so the batches are the same for any n. `auto`: the machine's cores less two (one
   * for the main thread, one for the GPU driver's), at least 1 and at most MAX_AUTO_BATCH_THREADS.
   */
  batch_threads: z.union([z.literal('auto'), z.number().int().min(1).max(16)]).default('auto'),
});

/**
 * `train.batch_threads: auto` uses at most this many: on the H200's host one thread drew
 * Zoology's MQAR batches (512 × 64, with the embedding gradient's token sort) in ~5 ms each,
 * against a GPU step of ~3 ms, so two would just keep up and three leave room for a busy host.
 */
export const MAX_AUTO_BATCH_THREADS = 3;

/** `train.batch_worker: auto` starts a worker on webgpu for runs of at least this many steps. */
export const BATCH_WORKER_AUTO_STEPS = 500;
export type TrainConfig = z.infer<typeof trainSchema>;

/** `tracking:`: the MLflow store and experiment a run logs to. */
export const trackingSchema = z.strictObject({
  uri: z.string().min(1).default('./mlruns'),
  experiment: z.string().min(1).default('Default'),
  run_name: z.string().min(1).optional(),
});
export type TrackingConfig = z.infer<typeof trackingSchema>;
