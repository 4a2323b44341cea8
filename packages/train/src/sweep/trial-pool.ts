import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { FromTrialProcess, ToTrialProcess, TrialJob, TrialOutcome } from './trial-protocol.js';

const ENTRY = fileURLToPath(new URL('./trial-process-entry.mjs', import.meta.url));
/** How much of a crashed trial process's stderr is kept to explain the crash. */
const STDERR_TAIL = 4000;

/** Decides whether a complete run of `job` may be marked FINISHED (see TrainRunOptions.beforeFinish). */
export type FinishGate = (job: TrialJob, runId: string) => Promise<string | undefined>;

interface Slot {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  /** Taken by a run() call (possibly still waiting for the process to start). */
  reserved: boolean;
  job?: TrialJob;
  settle?: (outcome: TrialOutcome) => void;
  stderr: string;
  startedAt: number;
}

/**
 * Up to `size` trial processes (forked lazily, reused between trials), each training one trial
 * at a time. Processes keep tfjs and its memory out of the caller, which stays free to serve
 * the progress display or a queue's lock renewals, and a crash costs one trial, not the sweep.
 */
export class TrialPool {
  private readonly slots: Slot[] = [];
  private readonly waiting: Array<() => void> = [];
  private closed = false;

  constructor(
    private readonly size: number,
    private readonly finishGate: FinishGate,
  ) {}

  /** Trains `job` in a free process (waiting for one); resolves with how it ended, never rejects. */
  async run(job: TrialJob): Promise<TrialOutcome> {
    const slot = await this.acquire();
    await slot.ready;
    if (!slot.child.connected) {
      slot.reserved = false;
      const detail = lastLine(slot.stderr);
      return {
        trialId: job.trialId,
        status: 'FAILED',
        seconds: 0,
        error: `the trial process did not start${detail ? `: ${detail}` : ''}`,
      };
    }
    return new Promise((resolve) => {
      slot.job = job;
      slot.startedAt = performance.now();
      slot.settle = (outcome) => {
        slot.job = undefined;
        slot.settle = undefined;
        slot.reserved = false;
        resolve(outcome);
        this.waiting.shift()?.();
      };
      this.send(slot, { type: 'run', job });
    });
  }

  /** Asks every running trial to stop: each ends KILLED after writing its checkpoint. */
  stopAll(): void {
    for (const slot of this.slots) if (slot.job) this.send(slot, { type: 'stop' });
  }

  get running(): number {
    return this.slots.filter((slot) => slot.job !== undefined).length;
  }

  /** Lets idle processes exit (they leave when their IPC channel closes). */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      this.slots.map(
        (slot) =>
          new Promise<void>((resolve) => {
            if (slot.child.exitCode !== null || slot.child.signalCode !== null) return resolve();
            slot.child.once('exit', () => resolve());
            if (slot.child.connected) slot.child.disconnect();
          }),
      ),
    );
  }

  private async acquire(): Promise<Slot> {
    for (;;) {
      if (this.closed) throw new Error('the trial pool is closed');
      const idle = this.slots.find((slot) => !slot.reserved && slot.child.connected);
      if (idle) {
        idle.reserved = true;
        return idle;
      }
      if (this.slots.length < this.size) {
        const slot = this.spawn();
        slot.reserved = true;
        return slot;
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
  }

  private spawn(): Slot {
    const child = fork(ENTRY, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], execArgv: [] });
    let markReady: () => void = () => undefined;
    const slot: Slot = {
      child,
      ready: new Promise((resolve) => {
        markReady = resolve;
      }),
      reserved: false,
      stderr: '',
      startedAt: performance.now(),
    };
    this.slots.push(slot);
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      slot.stderr = (slot.stderr + text).slice(-STDERR_TAIL);
    });
    child.on('message', (message: FromTrialProcess) => {
      if (message.type === 'ready') markReady();
      else if (message.type === 'outcome') slot.settle?.(message.outcome);
      else if (message.type === 'finish-request') void this.answerFinish(slot, message.runId);
    });
    child.on('exit', (code, signal) => {
      this.slots.splice(this.slots.indexOf(slot), 1);
      markReady();
      const job = slot.job;
      if (job !== undefined) {
        // Killed by the OS (memory), or crashed outside the trial's own error handling.
        const why = signal ? `signal ${signal}` : `exit code ${code}`;
        const detail = lastLine(slot.stderr);
        slot.settle?.({
          trialId: job.trialId,
          status: 'FAILED',
          seconds: (performance.now() - slot.startedAt) / 1000,
          error: `the trial process died (${why})${detail ? `: ${detail}` : ''}`,
        });
      } else {
        this.waiting.shift()?.();
      }
    });
    return slot;
  }

  private async answerFinish(slot: Slot, runId: string): Promise<void> {
    const job = slot.job;
    let reason: string | undefined;
    try {
      reason = job === undefined ? 'no trial is running in this process' : await this.finishGate(job, runId);
    } catch (error) {
      reason = `could not check for another finished run: ${error instanceof Error ? error.message : String(error)}`;
    }
    this.send(slot, { type: 'finish-reply', runId, ...(reason === undefined ? {} : { reason }) });
  }

  private send(slot: Slot, message: ToTrialProcess): void {
    if (slot.child.connected) slot.child.send(message);
  }
}

function lastLine(text: string): string {
  const lines = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('at '));
  return lines.at(-1) ?? '';
}
