/** Shapes that exercise the edges of banded attention, shared by the tf-op and WGSL tests. */
export interface AttentionCase {
  readonly length: number;
  readonly window: number;
  readonly heads: number;
  readonly kvHeads: number;
}

export const ATTENTION_CASES: readonly AttentionCase[] = [
  { length: 12, window: 4, heads: 2, kvHeads: 2 }, // L a multiple of w
  { length: 13, window: 4, heads: 4, kvHeads: 2 }, // a partial last block, grouped KV
  { length: 11, window: 3, heads: 4, kvHeads: 1 }, // multi-query
  { length: 9, window: 1, heads: 2, kvHeads: 1 },
  { length: 9, window: 8, heads: 2, kvHeads: 2 }, // w = L − 1
  { length: 7, window: 7, heads: 2, kvHeads: 1 }, // w = L: banded falls back to dense
  { length: 5, window: 9, heads: 2, kvHeads: 2 }, // w > L
];

export const describeAttentionCase = ({ length, window, heads, kvHeads }: AttentionCase) =>
  `L=${length} w=${window} heads=${heads} kv_heads=${kvHeads}`;
