import { explainMissingKernel, InterleaveError, takeWebgpuFailure } from '@interleave/core';
import type { Command } from './command.js';
import { evalCommand } from './commands/eval.js';
import { exportCommand } from './commands/export.js';
import { fitCommand } from './commands/fit.js';
import { generateCommand } from './commands/generate.js';
import { importCommand } from './commands/import.js';
import { inspectCommand } from './commands/inspect.js';
import { mlflowCommand } from './commands/mlflow.js';
import { newBlockCommand } from './commands/new-block.js';
import { reportCommand } from './commands/report.js';
import { sweepCommand } from './commands/sweep.js';
import { tokenizeCommand } from './commands/tokenize.js';
import { trainCommand } from './commands/train.js';
import { workerCommand } from './commands/worker.js';
import { explainFileError } from './file-errors.js';

const COMMANDS: readonly Command[] = [
  trainCommand,
  generateCommand,
  evalCommand,
  exportCommand,
  importCommand,
  sweepCommand,
  workerCommand,
  reportCommand,
  fitCommand,
  inspectCommand,
  tokenizeCommand,
  mlflowCommand,
  newBlockCommand,
];

function usage(): string {
  return `usage: interleave <command> [options]

commands:
${COMMANDS.map((command) => command.usage).join('\n')}
  help
      show this message

environment:
  INTERLEAVE_BACKEND     auto | tensorflow | webgpu | wasm | cpu (overrides backend:)
  INTERLEAVE_DEBUG=1     print stack traces of unexpected errors
  MLFLOW_TRACKING_TOKEN, MLFLOW_TRACKING_USERNAME/PASSWORD, MLFLOW_TRACKING_INSECURE_TLS
                         credentials and TLS for http(s):// tracking URIs (never printed)
  INTERLEAVE_MLFLOW_WAL_DIR
                         where runs on a tracking server keep their write-ahead logs
`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS.find((candidate) => candidate.name === name);
  if (command === undefined) throw new InterleaveError(`unknown command '${name}' (try: interleave help)`);
  return command.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (thrown: unknown) => {
    // A GPU failure recorded before the throw is its cause (a read-back after an out-of-memory
    // rejects with an empty message): report the failure, not the symptom.
    const error =
      takeWebgpuFailure('this command') ?? explainMissingKernel(thrown) ?? explainFileError(thrown) ?? thrown;
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
