import { rglruBlock } from '@interleave/blocks';
import { InterleaveError, type ResolvedLayer, type TensorRecord } from '@interleave/core';

type TensorSet = Record<string, TensorRecord>;

/**
 * google-deepmind/recurrentgemma's PyTorch `RecurrentBlock` (recurrentgemma/torch/modules.py and
 * layers.py), as a state_dict, against our RG-LRU mixer. Everything keeps its layout but the
 * convolution: recurrentgemma's `Conv1D.w` is [temporal_width, width] where ours is PyTorch's
 * depthwise Conv1d weight [width, 1, temporal_width]; the taps run in the same order (w[K − 1]
 * multiplies the current input in both). The block-diagonal gates are `BlockDiagonalLinear`
 * modules (`w` [heads, in, out], `b` [heads, width/heads]), which ours already match.
 */
const RECURRENT_BLOCK_NAMES: Readonly<Record<string, string>> = {
  'linear_y.weight': 'linear_y.weight',
  'linear_y.bias': 'linear_y.bias',
  'linear_x.weight': 'linear_x.weight',
  'linear_x.bias': 'linear_x.bias',
  'conv_1d.weight': 'conv_1d.w',
  'conv_1d.bias': 'conv_1d.b',
  'rg_lru.a_gate_weight': 'rg_lru.a_gate.w',
  'rg_lru.a_gate_bias': 'rg_lru.a_gate.b',
  'rg_lru.input_gate_weight': 'rg_lru.input_gate.w',
  'rg_lru.input_gate_bias': 'rg_lru.input_gate.b',
  'rg_lru.a_param': 'rg_lru.a_param',
  'linear_out.weight': 'linear_out.weight',
  'linear_out.bias': 'linear_out.bias',
};
const OUR_NAMES: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(RECURRENT_BLOCK_NAMES).map(([ours, theirs]) => [theirs, ours]),
);
const OUR_CONV = 'conv_1d.weight';

/** `blocks.<i>.recurrent_block.<name>`: where recurrentgemma's Griffin keeps layer i's recurrent block. */
export const RECURRENT_BLOCK_PREFIX = (layer: number) => `blocks.${layer}.recurrent_block.`;
const RECURRENT_BLOCK_NAME = /^blocks\.(\d+)\.recurrent_block\.(.+)$/;

/** A file holds recurrentgemma-layout weights when any tensor sits in a `recurrent_block`. */
export function hasRecurrentGemmaNames(names: readonly string[]): boolean {
  return names.some((name) => RECURRENT_BLOCK_NAME.test(name));
}

/**
 * Our names → recurrentgemma's for every RG-LRU layer: `layers.<i>.mixer.<p>` becomes
 * `blocks.<i>.recurrent_block.<p'>`, which `RecurrentBlock.load_state_dict` takes (strict) after
 * the prefix is stripped. The rest of the model keeps our names: recurrentgemma's residual block
 * always has an MLP, its RMSNorm scales by (1 + scale), its embedding by √width and its local
 * attention differs from ours, so only the recurrent block corresponds one to one.
 */
export function toRecurrentGemmaLayout(tensors: TensorSet, layers: readonly ResolvedLayer[]): TensorSet {
  const recurrent = layers.flatMap((layer, index) => (layer.block === rglruBlock ? [index] : []));
  if (recurrent.length === 0) {
    throw new InterleaveError("--layout recurrentgemma needs at least one 'rglru' layer (it renames RG-LRU blocks)");
  }
  const out: TensorSet = {};
  for (const [name, tensor] of Object.entries(tensors)) {
    const match = /^layers\.(\d+)\.mixer\.(.+)$/.exec(name);
    const layer = match === null ? -1 : Number(match[1]);
    if (match === null || !recurrent.includes(layer)) {
      out[name] = tensor;
      continue;
    }
    const ours = match[2] as string;
    const theirs = RECURRENT_BLOCK_NAMES[ours];
    if (theirs === undefined) throw new InterleaveError(`rglru parameter '${ours}' has no recurrentgemma name`);
    out[RECURRENT_BLOCK_PREFIX(layer) + theirs] = ours === OUR_CONV ? convToTemporalMajor(tensor) : tensor;
  }
  return out;
}

/** recurrentgemma's `blocks.<i>.recurrent_block.*` → our `layers.<i>.mixer.*`; other names pass through. */
export function fromRecurrentGemmaLayout(tensors: TensorSet, file: string): TensorSet {
  const out: TensorSet = {};
  for (const [name, tensor] of Object.entries(tensors)) {
    const match = RECURRENT_BLOCK_NAME.exec(name);
    if (match === null) {
      out[name] = tensor;
      continue;
    }
    const ours = OUR_NAMES[match[2] as string];
    if (ours === undefined) {
      throw new InterleaveError(
        `${file}: '${name}' is not a parameter of recurrentgemma's RecurrentBlock (expected one of ${Object.keys(OUR_NAMES).join(', ')})`,
      );
    }
    out[`layers.${match[1]}.mixer.${ours}`] = ours === OUR_CONV ? convToChannelMajor(tensor, file, name) : tensor;
  }
  return out;
}

/** [width, 1, K] → [K, width]. */
function convToTemporalMajor(tensor: TensorRecord): TensorRecord {
  const [width, , taps] = tensor.shape as [number, number, number];
  return { ...tensor, shape: [taps, width], data: transpose(tensor.data, width, taps) };
}

/** [K, width] → [width, 1, K]. */
function convToChannelMajor(tensor: TensorRecord, file: string, name: string): TensorRecord {
  if (tensor.shape.length !== 2) {
    throw new InterleaveError(
      `${file}: '${name}' has shape [${tensor.shape}], recurrentgemma's Conv1D.w is [K, width]`,
    );
  }
  const [taps, width] = tensor.shape as [number, number];
  return { ...tensor, shape: [width, 1, taps], data: transpose(tensor.data, taps, width) };
}

/** A row-major [rows, columns] matrix as [columns, rows]. */
function transpose<T extends TensorRecord['data']>(data: T, rows: number, columns: number): T {
  const out = new (data.constructor as new (length: number) => T)(data.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < columns; c++) out[c * rows + r] = data[r * columns + c] as T[number];
  }
  return out;
}
