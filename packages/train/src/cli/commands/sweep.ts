import { availableParallelism } from 'node:os';
import { InterleaveError } from '@interleave/core';
import { positiveInteger } from '../../sweep/cli-options.js';
import { runLocalSweep } from '../../sweep/local-sweep.js';
import { planSweep } from '../../sweep/plan.js';
import { DEFAULT_QUEUE_NAME, DEFAULT_RETRIES } from '../../sweep/queue.js';
import { runQueuedSweep } from '../../sweep/queue-sweep.js';
import { printSweepStatus } from '../../sweep/status.js';
import { type Command, parseCommandLine } from '../command.js';

export const sweepCommand: Command = {
  name: 'sweep',
  usage: `  sweep <sweep.yaml> [--workers N] [--set key.path=value ...]
      run every trial of the config's sweep: section in parallel trial processes, each an MLflow
      child run of the sweep's parent run; trials already FINISHED in MLflow are skipped, so
      running it again after a crash or Ctrl-C runs only what is missing or failed
      --workers N            trial processes at once (default: one per core)
      --set key.path=value   override a config value for every trial, repeatable
  sweep <sweep.yaml> --queue redis://host:6379 [--detach] [--attempts N] [--backoff-ms MS]
      put the trials in a BullMQ queue for 'interleave worker' processes (on any machine)
      and follow them until done; --detach only enqueues
      --attempts N           tries per trial before it counts as failed (default ${DEFAULT_RETRIES.attempts})
      --backoff-ms MS        wait before the first retry, doubling each time (default ${DEFAULT_RETRIES.backoffMs})
      --queue-name NAME      the queue (default ${DEFAULT_QUEUE_NAME})
  sweep <sweep.yaml> --status [--queue redis://host:6379]
      show where each trial stands (MLflow, and the queue when given)`,
  async run(args) {
    const { values, positionals } = parseCommandLine(args, {
      workers: { type: 'string' },
      set: { type: 'string', multiple: true },
      queue: { type: 'string' },
      'queue-name': { type: 'string' },
      status: { type: 'boolean' },
      detach: { type: 'boolean' },
      attempts: { type: 'string' },
      'backoff-ms': { type: 'string' },
    });
    if (positionals.length !== 1) {
      throw new InterleaveError('sweep takes exactly one config file: interleave sweep <sweep.yaml>');
    }
    if (values.queue === undefined) {
      for (const flag of ['detach', 'attempts', 'backoff-ms', 'queue-name'] as const) {
        if (values[flag] !== undefined) throw new InterleaveError(`--${flag} needs --queue redis://host:port`);
      }
    }
    if (values.queue !== undefined && values.workers !== undefined) {
      throw new InterleaveError(
        '--workers is for local sweeps; with --queue, start as many interleave worker processes as you like',
      );
    }
    const plan = await planSweep(positionals[0] as string, values.set ?? []);
    const queue =
      values.queue === undefined ? undefined : { url: values.queue, name: values['queue-name'] ?? DEFAULT_QUEUE_NAME };
    if (values.status) {
      await printSweepStatus(plan, process.stdout, queue);
      return 0;
    }

    const stopping = new AbortController();
    const stop = () => {
      if (stopping.signal.aborted) process.exit(130);
      stopping.abort();
      process.stderr.write(
        queue
          ? '\ninterrupted: no longer following the sweep (the trials stay queued)\n'
          : '\ninterrupted: stopping the running trials (they end KILLED with a checkpoint; press Ctrl-C again to quit now)\n',
      );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    try {
      if (queue === undefined) {
        const workers =
          values.workers === undefined ? availableParallelism() : positiveInteger('--workers', values.workers);
        const report = await runLocalSweep(plan, { workers, out: process.stdout, signal: stopping.signal });
        return report.exitCode;
      }
      const report = await runQueuedSweep(plan, {
        queue,
        retries: {
          attempts:
            values.attempts === undefined ? DEFAULT_RETRIES.attempts : positiveInteger('--attempts', values.attempts),
          backoffMs:
            values['backoff-ms'] === undefined
              ? DEFAULT_RETRIES.backoffMs
              : positiveInteger('--backoff-ms', values['backoff-ms']),
        },
        out: process.stdout,
        detach: values.detach ?? false,
        signal: stopping.signal,
      });
      return report?.exitCode ?? (stopping.signal.aborted ? 130 : 0);
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  },
};
