/**
 * A plugin that replaces a built-in entry rather than adding one: the `mqar` task, with every
 * key of its own kept, under a description that shows whose version a run got.
 */
import { type Plugin, REGISTRIES } from '@interleave/core';
import { mqarTask } from '@interleave/eval';

export const REPLACED_DESCRIPTION = `${mqarTask.description} (as replaced by test/plugins/replace-mqar.ts)`;

const replaceMqar: Plugin = (api) => {
  api.replace(REGISTRIES.tasks, { ...mqarTask, description: REPLACED_DESCRIPTION });
};

export default replaceMqar;
