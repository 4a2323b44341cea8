import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeSafetensorsFile } from '@interleave/core';
import type * as tf from '@tensorflow/tfjs';
import { tensorRecords } from './checkpoint.js';
import { type LoadModelOptions, loadModelFromCheckpoint } from './load-model.js';
import { toRecurrentGemmaLayout } from './recurrentgemma-layout.js';
import {
  MAMBA_SSM_CONFIG_KEY,
  mambaSsmConfig,
  type TensorSet,
  toMambaSsmLayout,
  type WeightLayout,
} from './weight-layouts.js';

export interface ExportOptions extends Omit<LoadModelOptions, 'backend'> {
  /** Default `interleave`. */
  layout?: WeightLayout;
}

export interface ExportResult {
  readonly file: string;
  readonly layout: WeightLayout;
  /** Every tensor written, in the file's (sorted) order. */
  readonly tensors: ReadonlyArray<{ readonly name: string; readonly shape: readonly number[] }>;
  readonly parameterCount: number;
}

/** The metadata key naming the layout a file was exported in. */
export const LAYOUT_METADATA_KEY = 'interleave.layout';

/**
 * Writes a checkpoint's weights as a PyTorch-layout safetensors file (`format: pt`), after
 * rebuilding the model and loading them, so what is written is known to fit its config. The
 * file keeps the config in its metadata and loads back with `loadModelFromCheckpoint`.
 */
export async function exportCheckpoint(
  source: string,
  outFile: string,
  options: ExportOptions = {},
): Promise<ExportResult> {
  const layout = options.layout ?? 'interleave';
  const loaded = await loadModelFromCheckpoint(source, { config: options.config });
  try {
    const { model, blueprint } = loaded;
    const variables: Record<string, tf.Tensor> = {};
    for (const { name, variable } of model.parameters.list()) variables[name] = variable;
    let tensors: TensorSet = await tensorRecords(variables);
    const metadata: Record<string, string> = { format: 'pt', ...blueprint.metadata, [LAYOUT_METADATA_KEY]: layout };
    if (layout === 'mamba_ssm') {
      metadata[MAMBA_SSM_CONFIG_KEY] = JSON.stringify(mambaSsmConfig(blueprint.model, blueprint.layers));
      tensors = toMambaSsmLayout(tensors, blueprint.model.tie_embeddings);
    }
    if (layout === 'recurrentgemma') tensors = toRecurrentGemmaLayout(tensors, blueprint.layers);
    await mkdir(dirname(outFile), { recursive: true });
    await writeSafetensorsFile(outFile, tensors, metadata);
    return {
      file: outFile,
      layout,
      tensors: Object.keys(tensors)
        .sort()
        .map((name) => ({ name, shape: [...(tensors[name]?.shape ?? [])] })),
      parameterCount: model.parameters.count(),
    };
  } finally {
    loaded.model.dispose();
  }
}
