import { type Plugin, registryOf } from '@interleave/core';
import { inductionExtrapolationEvaluation } from './evaluations/induction-extrapolation.js';
import { mqarGridEvaluation } from './evaluations/mqar-grid.js';
import { BUILTIN_TOKENIZERS, lmTask } from './lm/lm-task.js';
import { lmValidationEvaluation } from './lm/lm-validation.js';
import { TOKENIZERS } from './lm/tokenizers.js';
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
export { StepModeReplay, type StepModeReplaySetting } from './evaluations/step-mode-replay.js';
export { wilsonInterval } from './evaluations/wilson-interval.js';
export { bpeTokenizer, trainBpeJson } from './lm/bpe-tokenizer.js';
export { isShardFile, resolveCorpusFiles } from './lm/corpus-files.js';
export { languageModelMetrics } from './lm/lm-metrics.js';
export {
  BUILTIN_TOKENIZERS,
  createTokenizer,
  type LmConfig,
  LmTask,
  lmSchema,
  lmShards,
  lmTask,
  splitDocuments,
} from './lm/lm-task.js';
export { lmValidationEvaluation, lmValidationSchema } from './lm/lm-validation.js';
export {
  dtypeForVocabulary,
  readTokens,
  shardOf,
  type TokenDtype,
  type TokenizeProgress,
  type TokenShard,
  tokenizeFiles,
} from './lm/token-shards.js';
export {
  byteTokenizer,
  gpt2Tokenizer,
  requireTokenIds,
  type TextTokenizer,
  TOKENIZERS,
  type TokenizerContext,
  type TokenizerDefinition,
} from './lm/tokenizers.js';
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
  inductionTestBatchStream,
  writeInductionExample,
} from './tasks/induction-heads.js';
export * from './tasks/mad/index.js';
export { type MqarConfig, MqarTask, mqarSchema, mqarTask } from './tasks/mqar.js';
export { emptyTokenBatch, MQAR_PADDING_TOKEN, MqarExampleWriter, type MqarLayout } from './tasks/mqar-example.js';

/** Registers every built-in task, evaluation and tokenizer. */
export const registerBuiltinTasks: Plugin = (api) => {
  for (const tokenizer of BUILTIN_TOKENIZERS) api.register(TOKENIZERS, tokenizer);
  // lm looks tokenizers up when a run starts, so a plugin's tokenizer is found too.
  const tokenizers = registryOf(api.container, TOKENIZERS);
  for (const task of [mqarTask, inductionHeadsTask, lmTask(tokenizers)]) api.registerTask(task);
  registerMadTasks(api);
  for (const evaluation of [mqarGridEvaluation, inductionExtrapolationEvaluation, lmValidationEvaluation(tokenizers)])
    api.registerEvaluation(evaluation);
};
