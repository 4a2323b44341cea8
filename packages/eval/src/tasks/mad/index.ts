import type { Plugin } from '@interleave/core';
import { madCompressionTask } from './compression.js';
import { madFuzzyRecallTask } from './fuzzy-recall.js';
import { madInContextRecallTask, madNoisyRecallTask } from './in-context-recall.js';
import { madMemorizationTask } from './memorization.js';
import { madSelectiveCopyingTask } from './selective-copying.js';

export * from './compression.js';
export * from './fuzzy-recall.js';
export * from './in-context-recall.js';
export * from './mad-task.js';
export * from './memorization.js';
export * from './selective-copying.js';

/** Registers MAD's six tasks, in the order MAD's paper lists them. */
export const registerMadTasks: Plugin = (api) => {
  api.registerTask(madInContextRecallTask);
  api.registerTask(madFuzzyRecallTask);
  api.registerTask(madNoisyRecallTask);
  api.registerTask(madSelectiveCopyingTask);
  api.registerTask(madCompressionTask);
  api.registerTask(madMemorizationTask);
};
