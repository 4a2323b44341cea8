/**
 * The block contract checks (docs/design.md#block-contract) that every block, built-in or plugin, is tested
 * with. Import from `@interleave/blocks/testing` in test files only: `runBlockContract` uses vitest.
 */
export { type BuildOptions, type BuiltBlock, buildBlockForTest } from './build.js';
export {
  type CausalityOptions,
  type CausalityProbe,
  type CausalityResult,
  checkCausality,
  defaultCuts,
  expectCausal,
} from './causality.js';
export {
  type BlockContractCase,
  type BlockContractOptions,
  blockContractCases,
  runBlockContract,
} from './contract.js';
export {
  checkGradients,
  expectGradientsMatch,
  type GradientCheckOptions,
  type GradientCheckResult,
  type GradientCoordinate,
  type GradientEntry,
  type GradientStatus,
  type GradientTarget,
} from './gradients.js';
export { checkNoLeak, expectNoLeak, type LeakResult } from './leaks.js';
export { BlockContractError, type SequenceOptions } from './shared.js';
export {
  checkStateSize,
  expectStateSizeMatches,
  type StateSizeMeasurement,
  type StateSizeOptions,
  type StateSizeResult,
  stateTensorBytes,
} from './state-size.js';
export {
  checkStepMatchesForward,
  expectStepMatchesForward,
  type StepCheckOptions,
  type StepCheckResult,
} from './step-matches-forward.js';
export { useWebgpuBackend } from './webgpu.js';
