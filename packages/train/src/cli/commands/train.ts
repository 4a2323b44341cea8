import { InterleaveError } from '@interleave/core';
import { trainFromConfig } from '../../run/train-run.js';
import { type Command, parseCommandLine } from '../command.js';

export const trainCommand: Command = {
  name: 'train',
  usage: `  train <config.yaml> [--set key.path=value ...] [--resume RUN_ID]
      train a model from a config and log the run to MLflow
      --set key.path=value   override a config value (parsed as YAML), repeatable,
                             e.g. --set train.steps=30 --set tracking.uri=/tmp/mlruns
      --resume RUN_ID        continue an interrupted run from its last checkpoint (same config
                             and overrides); its MLflow history continues from that step`,
  async run(args) {
    const { values, positionals } = parseCommandLine(args, {
      set: { type: 'string', multiple: true },
      resume: { type: 'string' },
    });
    if (positionals.length !== 1) {
      throw new InterleaveError('train takes exactly one config file: interleave train <config.yaml>');
    }
    const stopSignal = { stopped: false };
    const stop = () => {
      if (stopSignal.stopped) process.exit(130);
      stopSignal.stopped = true;
      process.stderr.write(
        '\ninterrupted: finishing the step, writing a checkpoint (press Ctrl-C again to quit now)\n',
      );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    const { status } = await trainFromConfig({
      configFile: positionals[0] as string,
      overrides: values.set ?? [],
      stopSignal,
      resumeRunId: values.resume,
    });
    return status === 'FINISHED' ? 0 : 130;
  },
};
