import type { Plugin } from '@interleave/core';
import { mqarTask } from './tasks/mqar.js';

export { EpochOrder } from './tasks/epoch-order.js';
export { IndexedStreams } from './tasks/indexed-streams.js';
export { type MqarConfig, MqarTask, mqarSchema, mqarTask } from './tasks/mqar.js';
export { emptyTokenBatch, MQAR_PADDING_TOKEN, MqarExampleWriter, type MqarLayout } from './tasks/mqar-example.js';

/** Registers every built-in task. */
export const registerBuiltinTasks: Plugin = (api) => {
  for (const task of [mqarTask]) api.registerTask(task);
};
