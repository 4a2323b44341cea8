import type { TokenBatch } from '@interleave/core';

/**
 * The positions of a batch whose targets count (mask ≠ 0), as flat row indices into the
 * [B·L, D] hidden states, with their targets and a mask for padding. The output head and the
 * loss need nothing else: a position with mask 0 adds nothing to the loss and gets no gradient.
 * MQAR supervises only its K query positions (4 of 64 in Zoology's smallest cell), so running
 * the head there alone skips most of a step's largest matmul and its [B·L, V] logits.
 */
export interface SupervisedRows {
  /** Flat indices b·L + t of the supervised positions, in order, then padding: unsupervised positions, distinct. */
  readonly rows: Int32Array;
  readonly targets: Int32Array;
  /** The positions' mask values; 0 for padding. */
  readonly mask: Float32Array;
}

/**
 * The supervised rows of `batch`, padded to a capacity of B · 2^k rows (the least such ≥ their
 * count), so that batches whose counts differ a little share one shape (a recorded step replays
 * only its own shapes); undefined when that capacity would be over half of all positions, where
 * gathering saves too little to pay for itself (language modelling supervises every position).
 */
export function supervisedRows(batch: TokenBatch): SupervisedRows | undefined {
  const positions = batch.batchSize * batch.seqLen;
  let count = 0;
  for (let index = 0; index < positions; index += 1) if (batch.mask[index] !== 0) count += 1;
  let capacity = batch.batchSize;
  while (capacity < count) capacity *= 2;
  if (capacity * 2 > positions) return undefined;
  const rows = new Int32Array(capacity);
  const targets = new Int32Array(capacity);
  const mask = new Float32Array(capacity);
  let next = 0;
  for (let index = 0; index < positions; index += 1) {
    const weight = batch.mask[index] as number;
    if (weight === 0) continue;
    rows[next] = index;
    targets[next] = batch.targets[index] as number;
    mask[next] = weight;
    next += 1;
  }
  // Padding rows name unsupervised positions (mask 0), each once: every row is distinct, so the
  // gradient's scatter back into the hidden states never sees one position twice.
  for (let index = 0; next < capacity; index += 1) {
    if (batch.mask[index] !== 0) continue;
    rows[next] = index;
    next += 1;
  }
  return { rows, targets, mask };
}
