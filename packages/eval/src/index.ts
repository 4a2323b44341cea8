import type { Plugin } from '@interleave/core';
import { inductionExtrapolationEvaluation } from './evaluations/induction-extrapolation.js';
import { mqarGridEvaluation } from './evaluations/mqar-grid.js';
import { inductionHeadsTask } from './tasks/induction-heads.js';
import { registerMadTasks } from './tasks/mad/index.js';
import { mqarTask } from './tasks/mqar.js';

export {
  type InductionExtrapolationConfig,
  inductionExtrapolationEvaluation,
  inductionExtrapolationSchema,
} from './evaluations/induction-extrapolation.js';
export { lastPredictionsByStep, maskedAccuracyByForward, stateBytes } from './evaluations/model-predictions.js';
export { type MqarGridConfig, mqarGridEvaluation, mqarGridSchema } from './evaluations/mqar-grid.js';
export * from './report/index.js';
export * from './scaling/index.js';
export { EpochOrder } from './tasks/epoch-order.js';
export { IndexedStreams } from './tasks/indexed-streams.js';
export {
  type InductionHeadsConfig,
  InductionHeadsTask,
  inductionHeadsSchema,
  inductionHeadsTask,
  inductionTestBatches,
  writeInductionExample,
} from './tasks/induction-heads.js';
export * from './tasks/mad/index.js';
export { type MqarConfig, MqarTask, mqarSchema, mqarTask } from './tasks/mqar.js';
export { emptyTokenBatch, MQAR_PADDING_TOKEN, MqarExampleWriter, type MqarLayout } from './tasks/mqar-example.js';

/** Registers every built-in task and evaluation. */
export const registerBuiltinTasks: Plugin = (api) => {
  for (const task of [mqarTask, inductionHeadsTask]) api.registerTask(task);
  registerMadTasks(api);
  for (const evaluation of [mqarGridEvaluation, inductionExtrapolationEvaluation]) api.registerEvaluation(evaluation);
};
