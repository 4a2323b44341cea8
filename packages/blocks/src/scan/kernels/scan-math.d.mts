/** Flat row-major arrays of a kernel call, by role (see scan-math.mjs for each routine's roles). */
export type KernelArrays = Record<string, Float32Array | Float64Array>;

export interface SelectiveScanDims {
  batch: number;
  length: number;
  dInner: number;
  dState: number;
}

export interface RecurrenceDims {
  batch: number;
  length: number;
  features: number;
}

export type ScanRoutine<Dims> = (arrays: KernelArrays, dims: Dims, start: number, end: number) => void;

export declare const selectiveScanForward: ScanRoutine<SelectiveScanDims>;
export declare const selectiveScanBackward: ScanRoutine<SelectiveScanDims>;
export declare const linearRecurrenceForward: ScanRoutine<RecurrenceDims>;
export declare const linearRecurrenceBackward: ScanRoutine<RecurrenceDims>;

export type ScanRoutineName =
  | 'selectiveScanForward'
  | 'selectiveScanBackward'
  | 'linearRecurrenceForward'
  | 'linearRecurrenceBackward';

export declare const SCAN_ROUTINES: Record<
  ScanRoutineName,
  ScanRoutine<SelectiveScanDims> & ScanRoutine<RecurrenceDims>
>;
