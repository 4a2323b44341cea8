import type { BackendRequest } from '@interleave/core';

/** Sends one result record from a job back to the parent. */
export type Emit = (record: object) => Promise<void>;

/** A measurement that runs alone in a child process: gets its parameters, emits records. */
export type Job<Params> = (params: Params, emit: Emit) => Promise<void>;

/** What the parent hands a child on its command line. */
export interface JobSpec {
  readonly job: string;
  readonly backend: BackendRequest;
  readonly params: unknown;
}

/** Messages from child to parent over the IPC channel. */
export type ChildMessage =
  | { readonly type: 'record'; readonly record: object }
  | { readonly type: 'error'; readonly message: string };
