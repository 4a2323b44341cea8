/** Container keys. The container is the one place where the pieces of a run meet. */
export const TOKENS = {
  BlockRegistry: Symbol.for('interleave.BlockRegistry'),
  TaskRegistry: Symbol.for('interleave.TaskRegistry'),
  EvaluationRegistry: Symbol.for('interleave.EvaluationRegistry'),
  NormFactory: Symbol.for('interleave.NormFactory'),
  MlpFactory: Symbol.for('interleave.MlpFactory'),
} as const;
