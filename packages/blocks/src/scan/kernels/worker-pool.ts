import { availableParallelism } from 'node:os';
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { InterleaveError } from '@interleave/core';
import type { KernelArrays, ScanRoutineName } from './scan-math.mjs';
import { SCAN_ROUTINES } from './scan-math.mjs';

// Control words shared with scan-worker.mjs.
const JOB = 0;
const DONE = 1;
const FAILED = 2;
const READY_TIMEOUT_MS = 10_000;

/**
 * The threads a fused kernel may use, counting the calling thread: `INTERLEAVE_KERNEL_THREADS`,
 * else every core. tfjs-wasm runs one thread in Node, so this is how the scans use the others.
 */
export function kernelThreadCount(): number {
  const requested = process.env.INTERLEAVE_KERNEL_THREADS;
  if (requested === undefined || requested === '') return availableParallelism();
  const count = Number(requested);
  if (!Number.isInteger(count) || count < 1) {
    throw new InterleaveError(`INTERLEAVE_KERNEL_THREADS must be a positive integer, got '${requested}'`);
  }
  return count;
}

interface KernelWorker {
  worker: Worker;
  control: Int32Array;
  port: MessagePort;
}

/**
 * Runs a scan routine split by channel over the calling thread and helper worker threads. The
 * tfjs kernel calling it is synchronous, so the caller blocks in Atomics.wait while the workers
 * run; arrays must live in SharedArrayBuffers (see `SharedArena`). Workers are unref'd: an idle
 * pool never keeps the process alive.
 */
class KernelWorkerPool {
  private readonly workers: KernelWorker[] = [];
  private jobNumber = 0;

  get helperCount(): number {
    return this.workers.length;
  }

  ensureHelpers(count: number): void {
    while (this.workers.length < count) this.workers.push(startWorker());
  }

  /** Splits [0, units) into one contiguous slice per thread; the caller runs the first slice. */
  run(routine: ScanRoutineName, arrays: (slice: number) => KernelArrays, dims: object, units: number): void {
    const threads = Math.min(this.workers.length + 1, units);
    const bounds = Array.from({ length: threads + 1 }, (_, index) => Math.round((index * units) / threads));
    const job = ++this.jobNumber;
    for (let slice = 1; slice < threads; slice++) {
      const helper = this.workers[slice - 1] as KernelWorker;
      helper.port.postMessage({ routine, arrays: arrays(slice), dims, start: bounds[slice], end: bounds[slice + 1] });
      Atomics.store(helper.control, JOB, job);
      Atomics.notify(helper.control, JOB);
    }
    let failure: unknown;
    try {
      SCAN_ROUTINES[routine](arrays(0), dims as never, 0, bounds[1] as number);
    } catch (error) {
      failure = error;
    }
    for (let slice = 1; slice < threads; slice++) {
      const helper = this.workers[slice - 1] as KernelWorker;
      for (let done = Atomics.load(helper.control, DONE); done !== job; done = Atomics.load(helper.control, DONE)) {
        Atomics.wait(helper.control, DONE, done);
      }
      if (Atomics.exchange(helper.control, FAILED, 0) === 1) {
        const report = receiveMessageOnPort(helper.port)?.message as { error?: string } | undefined;
        failure ??= new Error(`scan kernel worker failed: ${report?.error ?? 'no report'}`);
      }
    }
    if (failure !== undefined) throw failure;
  }
}

function startWorker(): KernelWorker {
  const control = new Int32Array(new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT));
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(new URL('./scan-worker.mjs', import.meta.url), {
    workerData: { control, port: port2 },
    transferList: [port2],
  });
  worker.unref();
  port1.unref();
  // The worker sets DONE to −1 once it listens; waiting here keeps the first job simple.
  if (Atomics.wait(control, DONE, 0, READY_TIMEOUT_MS) === 'timed-out' && Atomics.load(control, DONE) !== -1) {
    void worker.terminate();
    throw new InterleaveError('a scan kernel worker did not start within 10 s (set INTERLEAVE_KERNEL_THREADS=1)');
  }
  return { worker, control, port: port1 };
}

let pool: KernelWorkerPool | undefined;

/** The process-wide pool, with at least `threads − 1` helper workers started. */
export function kernelWorkerPool(threads: number): KernelWorkerPool {
  pool ??= new KernelWorkerPool();
  pool.ensureHelpers(threads - 1);
  return pool;
}

export type { KernelWorkerPool };
