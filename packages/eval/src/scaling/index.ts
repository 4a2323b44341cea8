export { bootstrapResamples, type Interval, percentileInterval } from './bootstrap.js';
export {
  CHINCHILLA_MIN_POINTS,
  type ChinchillaFit,
  type ChinchillaOptions,
  type ChinchillaParameter,
  type ChinchillaPoint,
  chinchillaStartGrid,
  fitChinchilla,
} from './chinchilla.js';
export { CHINCHILLA_HUBER_DELTA, chinchillaObjective } from './chinchilla-objective.js';
export {
  COMPUTE_LAW_MIN_POINTS,
  type ComputeLawFit,
  type ComputeLawOptions,
  type ComputePoint,
  fitComputeLaw,
} from './compute-law.js';
export { type CsvRow, type CsvTable, parseCsv } from './csv.js';
export { columnIndex, numericColumn, textColumn } from './csv-columns.js';
export {
  ALL_POINTS_GROUP,
  type ChinchillaColumns,
  type ComputeColumns,
  dropHighestLoss,
  readChinchillaCsv,
  readComputeCsv,
  readCsvFile,
} from './csv-points.js';
export {
  DEFAULT_LOSS_METRIC,
  type ExperimentChinchillaPoints,
  type ExperimentComputePoints,
  type ExperimentPointOptions,
  readExperimentChinchillaPoints,
  readExperimentComputePoints,
  type SkippedRun,
} from './experiment-points.js';
export {
  describeFitSource,
  type FitReadOptions,
  type FitSource,
  fitSourceFields,
  readChinchillaPoints,
  readComputePoints,
} from './fit-source.js';
export { formatChinchillaTable, formatComputeLawTable, formatValue } from './fit-tables.js';
export {
  type ChinchillaFitReport,
  type ComputeLawReport,
  chinchillaFitJson,
  computeLawJson,
  type FitSettings,
  fitChinchillaSource,
  fitComputeLawSource,
  formatChinchillaFitReport,
  formatComputeLawReport,
} from './fit-workflow.js';
export {
  type DifferentiableFunction,
  type LbfgsOptions,
  type LbfgsResult,
  type LbfgsStop,
  minimizeLbfgs,
} from './lbfgs.js';
