import { parseArgs } from 'node:util';
import { explainMissingKernel, InterleaveError } from '@interleave/core';
import { trainFromConfig } from '../run/train-run.js';

const USAGE = `usage: interleave <command> [options]

commands:
  train <config.yaml> [--set key.path=value ...] [--resume RUN_ID]
                                                   train a model from a config; logs to MLflow
  help                                             show this message

options for train:
  --set key.path=value   override a config value (parsed as YAML), repeatable,
                         e.g. --set train.steps=30 --set tracking.uri=/tmp/mlruns
  --resume RUN_ID        continue an interrupted run from its last checkpoint (same config
                         and overrides); its MLflow history continues from that step
environment:
  INTERLEAVE_BACKEND     auto | tensorflow | webgpu | wasm | cpu (overrides backend:)
  INTERLEAVE_DEBUG=1     print stack traces of unexpected errors
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'train':
      return train(rest);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new InterleaveError(`unknown command '${command}' (try: interleave help)`);
  }
}

async function train(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(() =>
    parseArgs({
      args,
      options: { set: { type: 'string', multiple: true }, resume: { type: 'string' } },
      allowPositionals: true,
      strict: true,
    }),
  );
  if (positionals.length !== 1) {
    throw new InterleaveError('train takes exactly one config file: interleave train <config.yaml>');
  }
  const stopSignal = { stopped: false };
  const stop = () => {
    if (stopSignal.stopped) process.exit(130);
    stopSignal.stopped = true;
    process.stderr.write('\ninterrupted: finishing the step, writing a checkpoint (press Ctrl-C again to quit now)\n');
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
}

/** node:util's parser throws TypeErrors for bad flags; they are the user's mistake, not ours. */
function parseCommandLine<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    throw new InterleaveError(error instanceof Error ? error.message : String(error));
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (thrown: unknown) => {
    const error = explainMissingKernel(thrown) ?? thrown;
    if (error instanceof InterleaveError) {
      process.stderr.write(`interleave: ${error.message}\n`);
    } else {
      const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
      process.stderr.write(`interleave: internal error: ${message}\n`);
      if (process.env.INTERLEAVE_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
      else process.stderr.write('(set INTERLEAVE_DEBUG=1 for the stack trace, and please report it)\n');
    }
    process.exitCode = 1;
  },
);
