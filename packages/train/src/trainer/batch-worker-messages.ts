import type { SourceLocation, UploadDerivation } from '@interleave/core';
import type { TrainConfig } from '../config/train-schema.js';
import type { SupervisedRows } from './supervised-rows.js';

/** What a batch worker needs to build the run's task as the main thread did: config data only. */
export interface BatchRecipe {
  /** What messages call the config (its file, or the label of config data). */
  readonly label: string;
  readonly plugins: readonly string[];
  /** Where each plugin was named: relative plugin paths resolve against that file's folder. */
  readonly pluginLocations: readonly SourceLocation[];
  /** The config's `task:` section: `name` and the task's keys. */
  readonly task: { readonly name: string } & Record<string, unknown>;
  readonly vocabSize: number;
  readonly seed: number;
  readonly batchSize: number;
  /** The run's length: batches 0 .. steps − 1. */
  readonly steps: number;
  readonly headRows: TrainConfig['head_rows'];
}

/** A replayed step's derived uploads, which the worker computes with each batch from then on. */
export interface DerivedUploads {
  /** `derivationsKey(uploads)`: what the main thread checks a batch's values against. */
  readonly key: string;
  readonly uploads: readonly { readonly input: number; readonly derivation: UploadDerivation }[];
}

/** A batch's derived uploads, in the order of the `DerivedUploads` whose key they carry. */
export interface PrecomputedUploads {
  readonly key: string;
  readonly values: ArrayBufferView[][];
}

export type ToBatchWorker =
  | { readonly kind: 'draw'; readonly index: number }
  | ({ readonly kind: 'derive' } & DerivedUploads);

export type FromBatchWorker =
  | { readonly kind: 'ready' }
  | { readonly kind: 'unavailable'; readonly reason: string }
  | {
      readonly kind: 'drawn';
      readonly index: number;
      readonly batchSize: number;
      readonly seqLen: number;
      readonly inputs: Int32Array;
      readonly targets: Int32Array;
      readonly mask: Float32Array;
      readonly rows: SupervisedRows | undefined;
      readonly derived: PrecomputedUploads | undefined;
    }
  | { readonly kind: 'failed'; readonly index: number; readonly reason: string };
