import type { StepMetrics } from './trainer.js';

export interface ProgressStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

/**
 * Training progress: a single live bar on a terminal, plain log lines every `logEvery` steps
 * elsewhere (CI logs, files). Shows loss, accuracy, tokens/s and the ETA.
 */
export class ProgressReporter {
  private readonly startedAt = performance.now();
  private tokens = 0;
  private lastLineLength = 0;

  constructor(
    private readonly stream: ProgressStream,
    private readonly totalSteps: number,
    private readonly logEvery: number,
    private readonly firstStep = 0,
  ) {}

  /** Elapsed seconds since the reporter was created. */
  get elapsedSeconds(): number {
    return (performance.now() - this.startedAt) / 1000;
  }

  get tokensPerSecond(): number {
    return this.tokens / Math.max(this.elapsedSeconds, 1e-9);
  }

  update(metrics: StepMetrics): void {
    this.tokens += metrics.tokens;
    const done = metrics.step - this.firstStep;
    const remaining = this.totalSteps - metrics.step;
    const eta = done > 0 ? (this.elapsedSeconds / done) * remaining : Number.NaN;
    const stats = `loss ${metrics.loss.toFixed(4)}  acc ${metrics.accuracy.toFixed(3)}  ${formatRate(this.tokensPerSecond)} tok/s  ETA ${formatDuration(eta)}`;
    if (this.stream.isTTY) {
      const width = 24;
      const filled = Math.round((metrics.step / this.totalSteps) * width);
      const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
      this.rewrite(`step ${metrics.step}/${this.totalSteps} ${bar} ${stats}`);
    } else if (metrics.step % this.logEvery === 0 || metrics.step === this.totalSteps) {
      this.stream.write(`step ${metrics.step}/${this.totalSteps}  ${stats}\n`);
    }
  }

  /** A line that must stay visible (eval results, checkpoints), above the live bar. */
  log(line: string): void {
    if (this.stream.isTTY && this.lastLineLength > 0) {
      this.stream.write(`\r${' '.repeat(this.lastLineLength)}\r`);
      this.lastLineLength = 0;
    }
    this.stream.write(`${line}\n`);
  }

  finish(): void {
    if (this.stream.isTTY && this.lastLineLength > 0) this.stream.write('\n');
    this.lastLineLength = 0;
  }

  private rewrite(line: string): void {
    const columns = this.stream.columns ?? 120;
    const clipped = line.length > columns - 1 ? line.slice(0, columns - 1) : line;
    const padding = ' '.repeat(Math.max(0, this.lastLineLength - clipped.length));
    this.stream.write(`\r${clipped}${padding}`);
    this.lastLineLength = clipped.length;
  }
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function formatRate(rate: number): string {
  return rate >= 1000 ? `${(rate / 1000).toFixed(1)}k` : rate.toFixed(0);
}
