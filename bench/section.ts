import type { BackendChoice } from '@interleave/core';
import type { BenchOptions, SectionName } from './options.js';
import type { BenchTable } from './report/table.js';

/** The reference hybrid's training throughput, shared by the train and peer sections. */
export interface HybridThroughput {
  readonly tokensPerSecond: number;
  readonly stepMs: number;
  readonly parameters: number;
  readonly peakRssBytes: number;
  /** On webgpu, the GPU buffers' peak (null elsewhere). */
  readonly peakGpuBytes: number | null;
  /** The batch it ran at: the config's, or less where that ran out of memory. */
  readonly batchSize: number;
}

export interface SectionContext {
  readonly options: BenchOptions;
  readonly backend: BackendChoice;
  /** Progress lines (stderr), so stdout stays the tables. */
  readonly progress: (line: string) => void;
  /** Results one section measured that a later one compares against, within the same run. */
  readonly shared: { hybrid?: HybridThroughput };
}

/** One benchmark section: a small module that measures and returns its tables. */
export interface Section {
  readonly name: SectionName;
  run(context: SectionContext): Promise<BenchTable[]>;
}
