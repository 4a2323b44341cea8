import { InterleaveError } from '@interleave/core';
import { positiveInteger } from '../../sweep/cli-options.js';
import { DEFAULT_QUEUE_NAME } from '../../sweep/queue.js';
import { DEFAULT_LOCK_MS, runWorker } from '../../sweep/worker.js';
import { type Command, parseCommandLine } from '../command.js';

export const workerCommand: Command = {
  name: 'worker',
  usage: `  worker --queue redis://host:6379 [--concurrency N] [--exit-when-idle]
      train trials that 'interleave sweep --queue' put in the queue, logging each to the MLflow
      tracking URI of its config; run one per machine (or more), for as long as you like
      --concurrency N        trials at once, each in its own process (default 1)
      --exit-when-idle       exit once the queue has nothing waiting, delayed or running
      --lock-ms MS           a trial whose worker stops renewing its lock for this long is
                             handed to another worker (default ${DEFAULT_LOCK_MS})
      --queue-name NAME      the queue (default ${DEFAULT_QUEUE_NAME})`,
  async run(args) {
    const { values, positionals } = parseCommandLine(args, {
      queue: { type: 'string' },
      'queue-name': { type: 'string' },
      concurrency: { type: 'string' },
      'lock-ms': { type: 'string' },
      'exit-when-idle': { type: 'boolean' },
    });
    if (positionals.length > 0)
      throw new InterleaveError(`worker takes no file (got '${positionals[0]}'): the queue holds the trials`);
    if (values.queue === undefined) throw new InterleaveError('worker needs --queue redis://host:port');
    const stopping = new AbortController();
    const stopNow = new AbortController();
    const stop = () => {
      if (!stopping.signal.aborted) {
        stopping.abort();
        process.stderr.write(
          '\nstopping: finishing the running trials (press Ctrl-C again to stop them; they will be retried)\n',
        );
      } else if (!stopNow.signal.aborted) {
        stopNow.abort();
      } else {
        process.exit(130);
      }
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    try {
      await runWorker({
        queue: { url: values.queue, name: values['queue-name'] ?? DEFAULT_QUEUE_NAME },
        concurrency: values.concurrency === undefined ? 1 : positiveInteger('--concurrency', values.concurrency),
        lockMs: values['lock-ms'] === undefined ? DEFAULT_LOCK_MS : positiveInteger('--lock-ms', values['lock-ms']),
        exitWhenIdle: values['exit-when-idle'] ?? false,
        out: process.stdout,
        signal: stopping.signal,
        stopNow: stopNow.signal,
      });
      return stopNow.signal.aborted ? 130 : 0;
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
  },
};
