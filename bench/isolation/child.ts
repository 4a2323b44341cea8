import { selectBackend } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import type { ChildMessage, JobSpec } from './job.js';
import { JOBS } from './jobs.js';

const WASM_HEAP_LIMIT = 4 * 2 ** 30;
/** The heap grows in steps; within this of the limit, the next allocation can fail. */
const WASM_HEAP_SLACK = 256 * 2 ** 20;

/** The child side of runIsolated: one job, on a fresh tfjs backend, then exit. */
const spec = JSON.parse(process.argv[2] ?? '{}') as JobSpec;

function send(message: ChildMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!process.send) reject(new Error('bench jobs must be started by runIsolated (no IPC channel)'));
    else process.send(message, (error: Error | null) => (error ? reject(error) : resolve()));
  });
}

try {
  const job = JOBS[spec.job as keyof typeof JOBS];
  if (job === undefined) throw new Error(`unknown bench job '${spec.job}'`);
  await selectBackend(spec.backend, '--backend');
  await job(spec.params as never, (record) => send({ type: 'record', record }));
  process.exit(0);
} catch (error) {
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  await send({ type: 'error', message: wasmHeapExhausted() ? `out of memory: ${message}` : message }).catch(
    () => undefined,
  );
  process.exit(1);
}

/**
 * tfjs-wasm's heap cannot grow past 4 GiB (32-bit wasm). When an allocation fails there, the
 * error surfaces as whatever the kernel did next (e.g. "Cannot read properties of undefined"),
 * so the heap's size at the failure is what tells an out-of-memory apart from a bug.
 */
function wasmHeapExhausted(): boolean {
  if (tf.getBackend() !== 'wasm') return false;
  const heap = (tf.backend() as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8;
  return heap !== undefined && heap.length >= WASM_HEAP_LIMIT - WASM_HEAP_SLACK;
}
