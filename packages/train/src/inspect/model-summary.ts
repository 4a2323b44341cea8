import type { LanguageModel } from '@interleave/core';

/** One residual layer of `interleave inspect`: its parameters, compute and recurrent state. */
export interface LayerSummary {
  readonly index: number;
  readonly block: string;
  /** Everything under `layers.<i>.`: the mixer, its norm, and the MLP with its norm if any. */
  readonly parameters: number;
  /** FLOPs per training token at the task's sequence length: forward, backward and both. */
  readonly flops: FlopSummary;
  /** Bytes of the layer's `step` state per sequence (at the task's length when it grows). */
  readonly stateBytes: number;
  readonly stateGrowsWithLength: boolean;
}

export interface FlopSummary {
  readonly forward: number;
  readonly backward: number;
  readonly total: number;
}

/** Parts of the model outside the residual layers (no recurrent state). */
export interface PartSummary {
  readonly name: 'embedding' | 'final_norm' | 'head' | 'loss';
  readonly parameters: number;
  readonly flops: FlopSummary;
}

export interface ModelSummary {
  /** The sequence length FLOPs and growing states were evaluated at (the task's seq_len). */
  readonly seqLen: number;
  readonly layers: readonly LayerSummary[];
  readonly parts: readonly PartSummary[];
  /** Sums of the layers and parts; `parameters` is the model's whole parameter count. */
  readonly total: {
    readonly parameters: number;
    readonly flops: FlopSummary;
    readonly stateBytes: number;
    /** True when any layer's state grows with the sequence: `stateBytes` holds at `seqLen` only. */
    readonly stateGrowsWithLength: boolean;
  };
}

const LAYER_PARAMETER = /^layers\.(\d+)\./;

function flopSummary(count: { forward: number; backward: number }): FlopSummary {
  return { forward: count.forward, backward: count.backward, total: count.forward + count.backward };
}

function addFlops(a: FlopSummary, b: FlopSummary): FlopSummary {
  return { forward: a.forward + b.forward, backward: a.backward + b.backward, total: a.total + b.total };
}

/**
 * What `interleave inspect` prints for a built model: per layer and in total, parameters, FLOPs
 * per token at `seqLen` (each block's own formula) and state bytes per sequence (each block's
 * closed form), so that blocks can be compared at equal parameters, compute or state.
 */
export function summarizeModel(model: LanguageModel, seqLen: number): ModelSummary {
  const flops = model.flopsPerToken(seqLen);
  const state = model.stateBytesPerSequence(seqLen);
  const layerParameters = new Array<number>(flops.layers.length).fill(0);
  const partParameters = { embedding: 0, final_norm: 0, head: 0, loss: 0 };
  for (const { name, variable } of model.parameters.list()) {
    const layer = LAYER_PARAMETER.exec(name);
    if (layer !== null) {
      const index = Number(layer[1]);
      layerParameters[index] = (layerParameters[index] ?? 0) + variable.size;
    } else if (name.startsWith('embedding.')) partParameters.embedding += variable.size;
    else if (name.startsWith('norm_f.')) partParameters.final_norm += variable.size;
    else partParameters.head += variable.size; // lm_head.weight, untied only
  }
  const layers = flops.layers.map(
    (layer, index): LayerSummary => ({
      index,
      block: layer.block,
      parameters: layerParameters[index] ?? 0,
      flops: flopSummary(layer.total),
      stateBytes: state.layers[index]?.bytes ?? 0,
      stateGrowsWithLength: state.layers[index]?.growsWithLength ?? false,
    }),
  );
  const parts: PartSummary[] = [
    { name: 'embedding', parameters: partParameters.embedding, flops: flopSummary(flops.embedding) },
    { name: 'final_norm', parameters: partParameters.final_norm, flops: flopSummary(flops.finalNorm) },
    { name: 'head', parameters: partParameters.head, flops: flopSummary(flops.head) },
    { name: 'loss', parameters: 0, flops: flopSummary(flops.loss) },
  ];
  const rows = [...layers, ...parts];
  return {
    seqLen,
    layers,
    parts,
    total: {
      parameters: rows.reduce((sum, row) => sum + row.parameters, 0),
      flops: rows.reduce((sum, row) => addFlops(sum, row.flops), flopSummary({ forward: 0, backward: 0 })),
      stateBytes: state.bytes,
      stateGrowsWithLength: state.growsWithLength,
    },
  };
}
