import { mambaBlock } from '@interleave/blocks';
import { InterleaveError, type ModelConfig, type ResolvedLayer, type TensorRecord } from '@interleave/core';
import { hasRecurrentGemmaNames } from './recurrentgemma-layout.js';

/**
 * How tensors are named in a weights file. `interleave`: our own names (`layers.0.mixer.A_log`),
 * which are PyTorch's names for an equivalent module tree. `mamba_ssm`: the names of
 * state-spaces/mamba's `MambaLMHeadModel` (`backbone.layers.0.mixer.A_log`, `lm_head.weight`),
 * for models whose layers are all Mamba without MLP. `recurrentgemma`: every RG-LRU layer's
 * parameters under the names and layouts of google-deepmind/recurrentgemma's PyTorch
 * `RecurrentBlock` (`blocks.0.recurrent_block.conv_1d.w`), the rest in ours (recurrentgemma-layout.ts).
 */
export const WEIGHT_LAYOUTS = ['interleave', 'mamba_ssm', 'recurrentgemma'] as const;
export type WeightLayout = (typeof WEIGHT_LAYOUTS)[number];

export type TensorSet = Record<string, TensorRecord>;

const BACKBONE = 'backbone.';
const HEAD = 'lm_head.weight';
const EMBEDDING = 'embedding.weight';
/** The metadata key holding `MambaLMHeadModel`'s config (its `config.json`) in a mamba_ssm file. */
export const MAMBA_SSM_CONFIG_KEY = 'mamba_ssm.config';

/**
 * A file written by MambaLMHeadModel (or our `--layout mamba_ssm`) has every weight under
 * `backbone.`; one in the recurrentgemma layout has RG-LRU blocks under `blocks.<i>.recurrent_block.`.
 */
export function detectLayout(names: readonly string[]): WeightLayout {
  if (names.some((name) => name.startsWith(BACKBONE))) return 'mamba_ssm';
  return hasRecurrentGemmaNames(names) ? 'recurrentgemma' : 'interleave';
}

/**
 * Checks that MambaLMHeadModel can hold this model: every layer a Mamba mixer without MLP and
 * all with the same settings (it has one `ssm_cfg`). Returns its config, as its `config.json`.
 */
export function mambaSsmConfig(model: ModelConfig, layers: readonly ResolvedLayer[]): Record<string, unknown> {
  const reason = (index: number, why: string) =>
    new InterleaveError(
      `--layout mamba_ssm needs a model whose layers are all Mamba without MLP (MambaLMHeadModel); layers.${index} ${why}`,
    );
  layers.forEach((layer, index) => {
    if (layer.block !== mambaBlock) throw reason(index, `is a '${layer.block.name}' layer`);
    if (layer.mlp !== null) throw reason(index, 'has an MLP');
  });
  const ssm = JSON.stringify(layers[0]?.config);
  const different = layers.findIndex((layer) => JSON.stringify(layer.config) !== ssm);
  if (different >= 0) {
    throw reason(
      different,
      `has other Mamba settings than layers.0, and MambaLMHeadModel has one ssm_cfg for all layers`,
    );
  }
  return {
    d_model: model.d_model,
    d_intermediate: 0,
    n_layer: layers.length,
    vocab_size: model.vocab_size,
    ssm_cfg: layers[0]?.config ?? {},
    attn_layer_idx: [],
    attn_cfg: {},
    rms_norm: true,
    residual_in_fp32: true,
    fused_add_norm: true,
    // Padding would add embedding rows the weights do not have.
    pad_vocab_size_multiple: 1,
    tie_embeddings: model.tie_embeddings,
  };
}

/** Our names → MambaLMHeadModel's. A tied head is written out as `lm_head.weight` too, as its state_dict has it. */
export function toMambaSsmLayout(tensors: TensorSet, tieEmbeddings: boolean): TensorSet {
  const out: TensorSet = {};
  for (const [name, tensor] of Object.entries(tensors)) {
    out[name === HEAD ? HEAD : BACKBONE + name] = tensor;
  }
  const embedding = tensors[EMBEDDING];
  if (tieEmbeddings && embedding !== undefined) out[HEAD] = { ...embedding, data: embedding.data.slice() };
  return out;
}

/**
 * MambaLMHeadModel's names → ours. With a tied head, `lm_head.weight` must equal the embedding
 * (or stand in for it: `safetensors.torch.save_model` keeps only one name of a shared tensor).
 */
export function fromMambaSsmLayout(tensors: TensorSet, tieEmbeddings: boolean, file: string): TensorSet {
  const out: TensorSet = {};
  for (const [name, tensor] of Object.entries(tensors)) {
    if (name === HEAD) continue;
    if (!name.startsWith(BACKBONE)) {
      throw new InterleaveError(`${file}: tensor '${name}' is outside 'backbone.' in a mamba_ssm-layout file`);
    }
    out[name.slice(BACKBONE.length)] = tensor;
  }
  const head = tensors[HEAD];
  if (head === undefined) return out;
  if (!tieEmbeddings) {
    out[HEAD] = head;
    return out;
  }
  const embedding = out[EMBEDDING];
  if (embedding === undefined) {
    out[EMBEDDING] = head;
  } else if (!sameValues(embedding, head)) {
    throw new InterleaveError(
      `${file}: '${HEAD}' differs from '${BACKBONE}${EMBEDDING}', but the config ties the head to the embedding (tie_embeddings: true)`,
    );
  }
  return out;
}

function sameValues(a: TensorRecord, b: TensorRecord): boolean {
  if (a.shape.join(',') !== b.shape.join(',') || a.data.length !== b.data.length) return false;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) return false;
  return true;
}
