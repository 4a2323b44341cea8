import { join } from 'node:path';
import { InterleaveError, selectBackend } from '@interleave/core';
import { MODEL_FILE, writeModelWeights } from '../../checkpoint/checkpoint.js';
import { loadModelFromCheckpoint } from '../../checkpoint/load-model.js';
import { type Command, parseCommandLine } from '../command.js';

export const importCommand: Command = {
  name: 'import',
  usage: `  import <file.safetensors> --config <config.yaml> --out <dir>
      check PyTorch weights (our layout, MambaLMHeadModel's or recurrentgemma's) against a config and write them as
      <dir>/${MODEL_FILE}, with the config in its metadata, for any command that takes a checkpoint`,
  async run(args) {
    const { values, positionals } = parseCommandLine(args, {
      config: { type: 'string' },
      out: { type: 'string' },
    });
    if (positionals.length !== 1) {
      throw new InterleaveError(
        'import takes one weights file: interleave import <file.safetensors> --config <config.yaml> --out <dir>',
      );
    }
    if (values.config === undefined)
      throw new InterleaveError('import needs --config <config.yaml>: the model the weights belong to');
    if (values.out === undefined) throw new InterleaveError('import needs --out <dir>');
    await selectBackend('cpu');
    const { model, blueprint, layout } = await loadModelFromCheckpoint(positionals[0] as string, {
      config: values.config,
    });
    try {
      const file = join(values.out, MODEL_FILE);
      await writeModelWeights(file, model, blueprint.metadata);
      process.stdout.write(`wrote ${file}: ${model.parameters.list().length} tensors from the ${layout} layout\n`);
    } finally {
      model.dispose();
    }
    return 0;
  },
};
