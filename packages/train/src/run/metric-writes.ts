/**
 * Metric writes that training does not wait for: a step's metrics go to the tracker while the
 * next step runs (on a GPU a step takes a few milliseconds, about what the writes take), and a
 * failed write fails the run at the next step that checks. Evaluations, checkpoints and the end
 * of the loop settle them first, so what a checkpoint records has been written.
 */
export class MetricWrites {
  private readonly pending = new Set<Promise<void>>();
  private failure: { error: unknown } | undefined;

  /** Past this many unfinished writes the loop waits for them (a store slower than training). */
  static readonly MAX_PENDING = 256;

  /** Tracks `write`; resolves at once unless too many writes are unfinished. */
  async add(write: Promise<void>): Promise<void> {
    this.check();
    const tracked: Promise<void> = write.then(
      () => {
        this.pending.delete(tracked);
      },
      (error: unknown) => {
        this.failure ??= { error };
        this.pending.delete(tracked);
      },
    );
    this.pending.add(tracked);
    if (this.pending.size > MetricWrites.MAX_PENDING) await this.settle();
  }

  /** Throws the first failed write's error, if any has failed. */
  check(): void {
    if (this.failure !== undefined) throw this.failure.error;
  }

  /** Waits for every tracked write; throws the first failure. */
  async settle(): Promise<void> {
    await Promise.all(this.pending);
    this.check();
  }
}
