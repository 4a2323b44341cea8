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
// The caller posts the job's message before it publishes the job number, so the message should
// be there when the number is. Once, on a machine under very heavy load (load average ~20 on two
// cores), a worker found the number but not yet the message; rather than fail the training run,
// look again for a bounded time before calling it an error.
const MESSAGE_PATIENCE_MS = 10_000;
const pause = new Int32Array(new SharedArrayBuffer(4));

function nextMessage() {
  const deadline = Date.now() + MESSAGE_PATIENCE_MS;
  for (let received = receiveMessageOnPort(port); ; received = receiveMessageOnPort(port)) {
    if (received !== undefined || Date.now() > deadline) return received;
    Atomics.wait(pause, 0, 0, 1);
  }
}

let seen = 0;
Atomics.store(control, DONE, -1); // ready
Atomics.notify(control, DONE);
for (;;) {
  Atomics.wait(control, JOB, seen);
  seen = Atomics.load(control, JOB);
  const received = nextMessage();
  try {
    if (received === undefined)
      throw new Error(`job ${seen} arrived without its message (waited ${MESSAGE_PATIENCE_MS} ms)`);
    const { routine, arrays, dims, start, end } = received.message;
    SCAN_ROUTINES[routine](arrays, dims, start, end);
  } catch (error) {
    port.postMessage({ error: error instanceof Error ? error.stack : String(error) });
    Atomics.store(control, FAILED, 1);
  }
  Atomics.store(control, DONE, seen);
  Atomics.notify(control, DONE);
}
