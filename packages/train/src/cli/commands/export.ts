import { InterleaveError, selectBackend } from '@interleave/core';
import { exportCheckpoint } from '../../checkpoint/export-weights.js';
import { resolveCheckpointTarget } from '../../checkpoint/run-checkpoint.js';
import { WEIGHT_LAYOUTS, type WeightLayout } from '../../checkpoint/weight-layouts.js';
import { type Command, parseCommandLine } from '../command.js';

export const exportCommand: Command = {
  name: 'export',
  usage: `  export <run-id|run-dir|checkpoint> --out <model.safetensors> [--layout interleave|mamba_ssm|recurrentgemma] [--config <config.yaml>]
      write a run's weights as a PyTorch-layout safetensors file (the config goes in its metadata)
      --out FILE             the file to write
      --layout interleave    our names, e.g. layers.0.mixer.in_proj.weight (default)
      --layout mamba_ssm     the names of state-spaces/mamba's MambaLMHeadModel, e.g.
                             backbone.layers.0.mixer.in_proj.weight and lm_head.weight, for models
                             whose layers are all Mamba without MLP
      --layout recurrentgemma
                             each RG-LRU layer under the names and layouts of recurrentgemma's
                             PyTorch RecurrentBlock, e.g. blocks.0.recurrent_block.conv_1d.w
                             [K, d_rnn] (load_state_dict after stripping the prefix); the other
                             tensors keep our names
      --config FILE          the config to build the model from, for weights that record none
      --uri URI              the MLflow store (path or http(s)://) of a run id (default ./mlruns)`,
  async run(args) {
    const { values, positionals } = parseCommandLine(args, {
      out: { type: 'string' },
      layout: { type: 'string', default: 'interleave' },
      config: { type: 'string' },
      uri: { type: 'string', default: './mlruns' },
    });
    if (positionals.length !== 1) {
      throw new InterleaveError('export takes one run folder or checkpoint: interleave export <run-dir> --out <file>');
    }
    if (values.out === undefined) throw new InterleaveError('export needs --out <model.safetensors>');
    const layout = values.layout as WeightLayout;
    if (!WEIGHT_LAYOUTS.includes(layout)) {
      throw new InterleaveError(`unknown --layout '${values.layout}' (choose ${WEIGHT_LAYOUTS.join(', ')})`);
    }
    // Loading only assigns weights; the pure-JS backend starts at once and has every kernel.
    await selectBackend('cpu');
    const target = await resolveCheckpointTarget(positionals[0] as string, values.uri as string);
    const result = await exportCheckpoint(target.path, values.out, { layout, config: values.config }).finally(() =>
      target.dispose(),
    );
    process.stdout.write(
      `wrote ${result.file}: ${result.tensors.length} tensors, ${result.parameterCount.toLocaleString('en-US')} parameters, ${layout} layout\n`,
    );
    return 0;
  },
};
