import {
  type BackendCapabilities,
  capabilitiesOf,
  InterleaveError,
  LanguageModel,
  readSafetensorsFile,
  SeededRandom,
  type TensorRecord,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { METADATA_KEYS } from './checkpoint.js';
import { type CheckpointLocation, locateCheckpoint } from './checkpoint-location.js';
import { blueprintFromConfigFile, blueprintFromMetadata, type ModelBlueprint } from './model-blueprint.js';
import { fromRecurrentGemmaLayout } from './recurrentgemma-layout.js';
import { detectLayout, fromMambaSsmLayout, type TensorSet, type WeightLayout } from './weight-layouts.js';

export interface LoadModelOptions {
  /**
   * The config file to build the model from, instead of the one the checkpoint records; needed
   * for weights that record none, e.g. a state_dict saved by PyTorch.
   */
  config?: string;
  /** The backend blocks choose their formulation for; defaults to tfjs's current backend. */
  backend?: BackendCapabilities;
}

export interface LoadedModel {
  readonly model: LanguageModel;
  readonly blueprint: ModelBlueprint;
  readonly weightsFile: string;
  /** The layout the file was written in (a mamba_ssm file is renamed on the way in). */
  readonly layout: WeightLayout;
  /** The file's own `__metadata__`. */
  readonly metadata: Readonly<Record<string, string>>;
}

/**
 * Rebuilds a trained model: finds the weights (a run folder, a checkpoint folder or a
 * `.safetensors` file), builds the model its config describes — with the same container,
 * built-in blocks and plugins as training — and loads every weight, checking that the file has
 * exactly the model's tensors with the model's shapes. The caller disposes `model`.
 */
export async function loadModelFromCheckpoint(
  pathOrRunDirectory: string,
  options: LoadModelOptions = {},
): Promise<LoadedModel> {
  const location = await locateCheckpoint(pathOrRunDirectory);
  const file = location.weightsFile;
  const { tensors, metadata } = await readSafetensorsFile(file);
  const blueprint = await findBlueprint(metadata, location, options.config);
  const layout = detectLayout(Object.keys(tensors));
  const named =
    layout === 'mamba_ssm'
      ? fromMambaSsmLayout(tensors, blueprint.model.tie_embeddings, file)
      : layout === 'recurrentgemma'
        ? fromRecurrentGemmaLayout(tensors, file)
        : tensors;
  const model = LanguageModel.build({
    container: blueprint.container,
    config: blueprint.model,
    layers: blueprint.layers,
    // Every value is overwritten by the file; the seed only has to be valid.
    rng: new SeededRandom(0),
    backend: options.backend ?? capabilitiesOf(tf.getBackend()),
  });
  try {
    const origin = blueprint.source.startsWith(file) ? 'the config in its metadata' : blueprint.source;
    assignWeights(model, named, file, `the model built from ${origin}`);
  } catch (error) {
    model.dispose();
    throw error;
  }
  return { model, blueprint, weightsFile: file, layout, metadata };
}

/** The config that says which model the weights belong to, most explicit source first. */
async function findBlueprint(
  metadata: Record<string, string>,
  location: CheckpointLocation,
  configFile: string | undefined,
): Promise<ModelBlueprint> {
  if (configFile !== undefined) return blueprintFromConfigFile(configFile);
  const file = location.weightsFile;
  const recorded =
    metadata[METADATA_KEYS.config] !== undefined ? await blueprintFromMetadata(metadata, file) : undefined;
  if (recorded !== undefined) return recorded;
  if (location.runConfigFile !== undefined) {
    return blueprintFromConfigFile(location.runConfigFile, location.originalConfigFile);
  }
  const modelOnly = await blueprintFromMetadata(metadata, file);
  if (modelOnly !== undefined) return modelOnly;
  throw new InterleaveError(
    `${file} does not say which model it holds (no interleave.config metadata, no run config beside it); pass the config it was trained with (--config <config.yaml>)`,
  );
}

/**
 * Checks every name and shape before assigning anything, so the error names the first tensor
 * that does not fit rather than leaving a half-loaded model.
 */
function assignWeights(model: LanguageModel, tensors: TensorSet, file: string, theModel: string): void {
  const parameters = model.parameters.list();
  const values = parameters.map(({ name, variable }) => {
    const record = tensors[name];
    if (record === undefined) {
      throw new InterleaveError(`${file}: no tensor '${name}' (${theModel} has it, shape [${variable.shape}])`);
    }
    if (record.shape.join(',') !== variable.shape.join(',')) {
      throw new InterleaveError(
        `${file}: tensor '${name}' has shape [${record.shape}], ${theModel} expects [${variable.shape}]`,
      );
    }
    return floatValues(name, record, file);
  });
  const known = new Set(parameters.map(({ name }) => name));
  const extra = Object.keys(tensors).find((name) => !known.has(name));
  if (extra !== undefined) {
    throw new InterleaveError(`${file}: tensor '${extra}' is not a parameter of ${theModel}`);
  }
  parameters.forEach(({ variable }, index) => {
    tf.tidy(() => variable.assign(tf.tensor(values[index] as Float32Array, variable.shape, 'float32')));
  });
}

/** F32 as is; F16, BF16 (widened by the reader) and F64 converted to float32. */
function floatValues(name: string, record: TensorRecord, file: string): Float32Array {
  if (record.data instanceof Float32Array) return record.data;
  if (record.data instanceof Float64Array) return Float32Array.from(record.data);
  throw new InterleaveError(`${file}: tensor '${name}' is ${record.dtype}; weights must be floating point`);
}
