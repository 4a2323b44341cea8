import { join, resolve } from 'node:path';
import {
  InterleaveError,
  type LanguageModel,
  type LoadedConfig,
  readSafetensorsFile,
  type TensorRecord,
  writeFileAtomic,
  writeSafetensorsFile,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import type { Trainer } from '../trainer/trainer.js';

/** The folder of a run's artifacts that holds its latest checkpoint, final weights included. */
export const CHECKPOINT_FOLDER = 'checkpoint';
export const MODEL_FILE = 'model.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const TRAINER_FILE = 'trainer.json';

/**
 * Keys of a weights file's `__metadata__` that make it self-describing. `model`: the model
 * section of the config (always written; enough to rebuild a model of built-in blocks).
 * `config`: the run's whole resolved config, plugins included, when the writer knows it.
 * `configFile`: the absolute path of the config file, which relative plugin paths are relative to.
 */
export const METADATA_KEYS = {
  model: 'interleave.model',
  config: 'interleave.config',
  configFile: 'interleave.config_file',
} as const;

/**
 * The metadata that lets `loadModelFromCheckpoint` rebuild a run's model from its weights file
 * alone. Config data that came from no file (a sweep trial's) records no config file: its
 * plugin paths were made absolute when the sweep was planned, so they need no anchor.
 */
export function configMetadata(loaded: Pick<LoadedConfig, 'file' | 'resolved'>): Record<string, string> {
  return {
    [METADATA_KEYS.config]: JSON.stringify(loaded.resolved),
    ...(loaded.file === undefined ? {} : { [METADATA_KEYS.configFile]: resolve(loaded.file) }),
  };
}

/** `trainer.json` (docs/design.md#checkpoints): where training stands, so a resumed run continues exactly. */
export interface TrainerState {
  step: number;
  /** Index of the next training batch; batches are a pure function of (seed, index). */
  data_position: number;
  seed: number;
  config_hash: string;
  backend: string;
}

/** Tensors as float32 safetensors records (their data read back from the backend). */
/** Reads tensors back asynchronously (webgpu in Node has no synchronous read). */
export async function tensorRecords(tensors: Record<string, tf.Tensor>): Promise<Record<string, TensorRecord>> {
  const out: Record<string, TensorRecord> = {};
  for (const [name, tensor] of Object.entries(tensors)) {
    out[name] = { dtype: 'F32', shape: [...tensor.shape], data: (await tensor.data()) as Float32Array };
  }
  return out;
}

/**
 * The model's weights, PyTorch-style names and layouts (docs/design.md#checkpoints), with the model's config in the
 * metadata; pass `configMetadata(loaded)` in `metadata` to record the whole run config as well.
 */
export async function writeModelWeights(path: string, model: LanguageModel, metadata: Record<string, string> = {}) {
  const tensors: Record<string, tf.Tensor> = {};
  for (const { name, variable } of model.parameters.list()) tensors[name] = variable;
  await writeSafetensorsFile(path, await tensorRecords(tensors), {
    format: 'pt',
    [METADATA_KEYS.model]: JSON.stringify(model.config),
    ...metadata,
  });
}

/**
 * Writes model, optimizer and trainer state into `directory`, each file atomically; the
 * trainer state goes last, so a crash mid-way leaves the previous complete checkpoint's
 * step description pointing at files at least as new.
 */
export async function writeCheckpoint(
  directory: string,
  trainer: Trainer,
  state: TrainerState,
  extraMetadata: Record<string, string> = {},
): Promise<void> {
  const metadata = { step: String(state.step), config_hash: state.config_hash };
  await writeModelWeights(join(directory, MODEL_FILE), trainer.model, { ...metadata, ...extraMetadata });
  await writeSafetensorsFile(
    join(directory, OPTIMIZER_FILE),
    await tensorRecords(trainer.optimizer.stateTensors()),
    metadata,
  );
  await writeFileAtomic(join(directory, TRAINER_FILE), `${JSON.stringify(state, null, 2)}\n`);
}

/** Loads named tensors into the variables with the same names; every name must match in shape. */
export async function loadTensorsInto(path: string, targets: Record<string, tf.Variable>): Promise<void> {
  const { tensors } = await readSafetensorsFile(path);
  for (const [name, variable] of Object.entries(targets)) {
    const record = tensors[name];
    if (record === undefined) throw new InterleaveError(`${path}: no tensor named '${name}'`);
    if (record.shape.join(',') !== variable.shape.join(',')) {
      throw new InterleaveError(
        `${path}: '${name}' has shape [${record.shape}], the model expects [${variable.shape}]`,
      );
    }
    tf.tidy(() => variable.assign(tf.tensor(record.data as Float32Array, record.shape, 'float32')));
  }
}
