import * as tf from '@tensorflow/tfjs';
import { webgpuDeviceInfo } from '../backend/webgpu-device.js';
import { InterleaveError } from '../errors.js';

/**
 * The output head's logits are [B·L, V]: the largest tensor a step makes (the reference hybrid at
 * B16 L4096 has 65,536 × 8,192 floats = 2 GiB). On webgpu every tensor is one storage buffer bound
 * whole, and Dawn refuses a binding over `maxStorageBufferBindingSize` (2,147,483,644 bytes on an
 * H200, 128 MiB on the llvmpipe device), so the head and the loss over it run in chunks of rows
 * that each stay under that limit. Other backends have no such limit: one chunk.
 */

/** The share of the device's binding limit a chunk may use: room for tfjs's size rounding. */
const BINDING_MARGIN = 15 / 16;

/** Bytes one [rows, V] tensor of the head may take on the current backend (Infinity: no limit). */
export function headChunkBudgetBytes(): number {
  if (tf.getBackend() !== 'webgpu') return Number.POSITIVE_INFINITY;
  const limits = webgpuDeviceInfo(tf.backend())?.limits;
  if (limits === undefined) return Number.POSITIVE_INFINITY;
  return Math.floor(Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize) * BINDING_MARGIN);
}

/**
 * Sizes of the row chunks, in order, summing to `rows`, such that a float32 [size, vocab] tensor
 * takes at most `budgetBytes`: as few chunks as that allows, of near-equal size. One chunk
 * (`[rows]`) whenever the whole fits, which is the unchunked path.
 */
export function headChunkRows(rows: number, vocab: number, budgetBytes = headChunkBudgetBytes()): number[] {
  const rowBytes = vocab * Float32Array.BYTES_PER_ELEMENT;
  const rowsPerChunk = Math.floor(budgetBytes / rowBytes);
  if (rowsPerChunk >= rows) return [rows];
  if (rowsPerChunk < 1) {
    throw new InterleaveError(
      `one row of logits (${rowBytes} bytes) exceeds the head's chunk budget (${budgetBytes} bytes)`,
    );
  }
  const chunks = Math.ceil(rows / rowsPerChunk);
  const base = Math.floor(rows / chunks);
  const longer = rows - base * chunks;
  return Array.from({ length: chunks }, (_, index) => (index < longer ? base + 1 : base));
}
