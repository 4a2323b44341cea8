// A kernel worker thread: sleeps on its control word, and on each new job number runs one slice
// of a scan routine over shared memory, then publishes the job number as done. Jobs arrive as
// messages read synchronously (receiveMessageOnPort), because the caller is a synchronous tfjs
// kernel blocked in Atomics.wait. Protocol constants: worker-pool.ts.
import { receiveMessageOnPort, workerData } from 'node:worker_threads';
import { SCAN_ROUTINES } from './scan-math.mjs';

const JOB = 0;
const DONE = 1;
const FAILED = 2;
const { control, port } = workerData;

let seen = 0;
Atomics.store(control, DONE, -1); // ready
Atomics.notify(control, DONE);
for (;;) {
  Atomics.wait(control, JOB, seen);
  seen = Atomics.load(control, JOB);
  const received = receiveMessageOnPort(port);
  try {
    if (received === undefined) throw new Error(`job ${seen} arrived without its message`);
    const { routine, arrays, dims, start, end } = received.message;
    SCAN_ROUTINES[routine](arrays, dims, start, end);
  } catch (error) {
    port.postMessage({ error: error instanceof Error ? error.stack : String(error) });
    Atomics.store(control, FAILED, 1);
  }
  Atomics.store(control, DONE, seen);
  Atomics.notify(control, DONE);
}
