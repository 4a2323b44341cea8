import { formatDuration, type ProgressStream } from '../trainer/progress.js';

export interface SweepCounts {
  /** FINISHED, including trials that had finished before this session. */
  readonly done: number;
  readonly running: number;
  readonly failed: number;
  /** Not started yet (waiting in a queue, or for a free worker). */
  readonly waiting: number;
}

/**
 * The sweep's progress: on a terminal, one status line redrawn in place (every second, so the
 * elapsed time and ETA move) with trial events printed above it; elsewhere, one plain line per
 * event, each ending with the counts, so a CI log reads as a history.
 */
export class SweepProgress {
  private readonly startedAt = performance.now();
  private counts: SweepCounts;
  private lastLineLength = 0;
  private readonly timer: NodeJS.Timeout | undefined;

  /** `doneBefore` trials were finished when this session started: they do not count towards the ETA's rate. */
  constructor(
    private readonly stream: ProgressStream,
    private readonly total: number,
    private readonly doneBefore: number,
  ) {
    this.counts = { done: doneBefore, running: 0, failed: 0, waiting: total - doneBefore };
    if (stream.isTTY) {
      this.timer = setInterval(() => this.redraw(), 1000);
      this.timer.unref();
    }
  }

  update(counts: SweepCounts): void {
    this.counts = counts;
    this.redraw();
  }

  /** A line that stays (a trial finished or failed), followed by the counts where lines are plain. */
  event(line: string): void {
    if (this.stream.isTTY) {
      this.clear();
      this.stream.write(`${line}\n`);
      this.redraw();
    } else {
      this.stream.write(`${line}  [${this.status()}]\n`);
    }
  }

  finish(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.stream.isTTY) {
      this.clear();
      this.stream.write(`${this.status()}\n`);
    }
  }

  /** `7/12 done, 2 running, 1 failed, 2 waiting · 1m05s · ETA 40s` */
  status(): string {
    const { done, running, failed, waiting } = this.counts;
    const elapsed = (performance.now() - this.startedAt) / 1000;
    const completedHere = done - this.doneBefore + failed;
    const remaining = this.total - done - failed;
    // Trials end at a steady rate once the workers are busy: remaining / rate.
    const eta =
      completedHere > 0 && remaining > 0 ? (elapsed / completedHere) * remaining : remaining === 0 ? 0 : Number.NaN;
    return `${done}/${this.total} done, ${running} running, ${failed} failed, ${waiting} waiting · ${formatDuration(elapsed)} · ETA ${formatDuration(eta)}`;
  }

  private redraw(): void {
    if (!this.stream.isTTY) return;
    const columns = this.stream.columns ?? 120;
    const line = `sweep: ${this.status()}`.slice(0, columns - 1);
    this.stream.write(`\r${line}${' '.repeat(Math.max(0, this.lastLineLength - line.length))}`);
    this.lastLineLength = line.length;
  }

  private clear(): void {
    if (this.lastLineLength === 0) return;
    this.stream.write(`\r${' '.repeat(this.lastLineLength)}\r`);
    this.lastLineLength = 0;
  }
}
