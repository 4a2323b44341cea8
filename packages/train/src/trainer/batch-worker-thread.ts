/**
 * The body of a batch worker thread (batch-worker.ts): builds the run's task from config data
 * through the same container as the main thread (built-in tasks and blocks, then the config's
 * plugins) and draws the training batches it is asked for, in order.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { configDataSource, deriveUpload, REGISTRIES, registryOf, resolveByName, type Task } from '@interleave/core';
import { createRunContainer } from '../run/prepare-run.js';
import type {
  BatchRecipe,
  DerivedUploads,
  FromBatchWorker,
  PrecomputedUploads,
  ToBatchWorker,
} from './batch-worker-messages.js';
import { stepData } from './step-data.js';

const port = parentPort;
if (port === null) throw new Error('batch-worker-thread.ts runs only as a worker thread');
const recipe = workerData as BatchRecipe;
const post = (message: FromBatchWorker, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

async function buildTask(): Promise<Task> {
  const container = await createRunContainer(recipe.plugins, (index) => recipe.pluginLocations[index] ?? { file: '' });
  const { name, ...keys } = recipe.task;
  // The main thread validated this section against its file; this is the same data again.
  const { definition, config } = resolveByName(registryOf(container, REGISTRIES.tasks), name, keys, {
    path: ['task'],
    nameKey: 'name',
    source: configDataSource(recipe.label),
  });
  return definition.create(config, { vocabSize: recipe.vocabSize, seed: recipe.seed });
}

function reason(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

let task: Task | undefined;
/** Set by the main thread once a step is recorded: computed with every batch after. */
let derivedUploads: DerivedUploads | undefined;

/** The derived uploads of `arrays`, copied; undefined where a derivation throws (the main thread meets it). */
function deriveFor(arrays: readonly ArrayBufferView[]): PrecomputedUploads | undefined {
  if (derivedUploads === undefined) return undefined;
  try {
    const values = derivedUploads.uploads.map(({ input, derivation }) =>
      deriveUpload(derivation, arrays[input] as ArrayBufferView & ArrayLike<number>).map((array) => copyOf(array)),
    );
    return { key: derivedUploads.key, values };
  } catch {
    return undefined;
  }
}

function copyOf(array: ArrayBufferView): ArrayBufferView {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength).slice();
}
try {
  task = await buildTask();
  post({ kind: 'ready' });
} catch (error) {
  post({ kind: 'unavailable', reason: reason(error) });
}

port.on('message', (message: ToBatchWorker) => {
  if (message.kind === 'derive') {
    derivedUploads = message;
    return;
  }
  if (task === undefined) return;
  try {
    const data = stepData(task.trainBatch(message.index, recipe.batchSize), recipe.headRows);
    // Copies, transferred: a task may hand out views of arrays it keeps (a corpus, a cache).
    const { batch, rows } = data;
    const arrays = {
      inputs: batch.inputs.slice(),
      targets: batch.targets.slice(),
      mask: batch.mask.slice(),
      rows: rows && { rows: rows.rows.slice(), targets: rows.targets.slice(), mask: rows.mask.slice() },
    };
    const derived = deriveFor(data.arrays);
    const buffers = [
      arrays.inputs,
      arrays.targets,
      arrays.mask,
      ...(arrays.rows ? Object.values(arrays.rows) : []),
      ...(derived?.values.flat() ?? []),
    ];
    post(
      { kind: 'drawn', index: message.index, batchSize: batch.batchSize, seqLen: batch.seqLen, ...arrays, derived },
      buffers.map((array) => array.buffer as ArrayBuffer),
    );
  } catch (error) {
    post({ kind: 'failed', index: message.index, reason: reason(error) });
  }
});
