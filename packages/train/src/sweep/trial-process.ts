import { runTrial } from './run-trial.js';
import type { FromTrialProcess, ToTrialProcess } from './trial-protocol.js';

/**
 * The body of a trial process (forked by TrialPool): trains the trials its parent sends, one at
 * a time, and answers over IPC. It stops the current trial (which then ends KILLED, with its
 * checkpoint) when asked, on SIGINT/SIGTERM, or when the parent goes away.
 */
const send = (message: FromTrialProcess) => process.send?.(message);
const pendingFinish = new Map<string, (reason: string | undefined) => void>();
let stopSignal = { stopped: false };
let busy = false;
let orphaned = false;

const stop = () => {
  stopSignal.stopped = true;
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
process.on('disconnect', () => {
  orphaned = true;
  stop();
  // Nobody is left to ask whether a run may finish: it may not.
  for (const resolve of pendingFinish.values()) resolve('the sweep process that started this trial went away');
  if (!busy) process.exit(0);
});

process.on('message', (message: ToTrialProcess) => {
  if (message.type === 'stop') stop();
  else if (message.type === 'finish-reply') pendingFinish.get(message.runId)?.(message.reason);
  else if (message.type === 'run') void run(message.job);
});

async function run(job: Extract<ToTrialProcess, { type: 'run' }>['job']): Promise<void> {
  busy = true;
  stopSignal = { stopped: false };
  const outcome = await runTrial(job, {
    stopSignal,
    beforeFinish: (runId) =>
      orphaned
        ? Promise.resolve('the sweep process that started this trial went away')
        : new Promise((resolve) => {
            pendingFinish.set(runId, (reason) => {
              pendingFinish.delete(runId);
              resolve(reason);
            });
            send({ type: 'finish-request', runId });
          }),
  });
  busy = false;
  if (orphaned) process.exit(0);
  send({ type: 'outcome', outcome });
}

send({ type: 'ready' });
