import { fork } from 'node:child_process';
import { join } from 'node:path';
import type { BackendRequest } from '@interleave/core';
import type { ChildMessage, JobSpec } from './job.js';
import type { JobName } from './jobs.js';

const ENTRY = join(import.meta.dirname, 'child-entry.mjs');
const STDERR_KEPT = 64 * 1024;

export interface IsolatedRun<Record> {
  /** What the job emitted before it ended, in order; partial when it failed. */
  readonly records: Record[];
  /** Why the job did not finish, in one line; undefined when it did. */
  readonly failure: string | undefined;
}

/**
 * Runs one measurement job in a fresh child process. Each row then starts from a clean heap
 * (peak RSS is the row's own: the wasm heap never shrinks within a process), and a job that
 * exhausts the wasm heap — which aborts the whole process — costs its row, not the run.
 */
export function runIsolated<Record>(
  job: JobName,
  params: object,
  backend: BackendRequest,
): Promise<IsolatedRun<Record>> {
  const spec: JobSpec = { job, backend, params };
  const child = fork(ENTRY, [JSON.stringify(spec)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], execArgv: [] });
  const records: Record[] = [];
  let reported: string | undefined;
  let stderr = '';
  child.on('message', (message: ChildMessage) => {
    if (message.type === 'record') records.push(message.record as Record);
    else reported = message.message;
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-STDERR_KEPT);
  });
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      const failed = code !== 0 || signal !== null;
      resolve({ records, failure: failed ? describeFailure(reported, stderr, code, signal, backend) : undefined });
    });
  });
}

/** One line: the job's own error, else the crash the child printed, named for what it means. */
function describeFailure(
  reported: string | undefined,
  stderr: string,
  code: number | null,
  signal: NodeJS.Signals | null,
  backend: BackendRequest,
): string {
  const crash = stderr
    .match(/(?:^|\n)\s*((?:\w*Error|Aborted\(\))[^\n]*)/g)
    ?.at(-1)
    ?.trim();
  const message = reported ?? crash ?? (signal ? `killed by ${signal}` : `exited with code ${code}`);
  // tfjs-wasm aborts (or fails in a later call) when malloc cannot grow its heap past 4 GiB.
  const heapExhausted = /Aborted\(|table index is out of bounds|memory access out of bounds|Out of memory/i;
  if (message.startsWith('out of memory') || (backend === 'wasm' && heapExhausted.test(`${message}\n${stderr}`))) {
    return `out of memory: the wasm heap is capped at 4 GiB (${message.replace(/^out of memory: /, '')})`;
  }
  // On webgpu the trainer throws the device's first error (core's webgpu-failures).
  if (message.includes('GPUOutOfMemoryError')) {
    return `out of memory: the GPU ran out (${message.replace(/^InterleaveError: /, '')})`;
  }
  if (signal === 'SIGKILL') return `killed (SIGKILL: out of system memory?)`;
  return message;
}

/** A table cell for a measurement that did not finish: the notes carry the full reason. */
export function failureCell(failure: string | undefined): string | null {
  if (failure === undefined) return null;
  return failure.startsWith('out of memory') ? 'out of memory' : 'failed';
}
