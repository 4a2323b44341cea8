import { readFileSync, writeFileSync } from 'node:fs';

/**
 * The process's peak resident set size over an interval. On Linux the kernel keeps the peak
 * itself (VmHWM in /proc/self/status) and writing 5 to /proc/self/clear_refs resets it, so
 * the peak is exact even inside long synchronous kernels, where a timer could not sample.
 * Elsewhere the peak is the larger of the RSS at start and at the end (a lower bound).
 *
 * Note that wasm memory only grows: once a row has enlarged the tfjs-wasm heap, later rows in
 * the same process carry that heap in their RSS. Tensor bytes (tf.profile) do not have this bias.
 */
export class PeakRss {
  private constructor(
    private readonly exact: boolean,
    private readonly startRss: number,
  ) {}

  static start(): PeakRss {
    let exact = false;
    try {
      writeFileSync('/proc/self/clear_refs', '5');
      exact = readHighWaterMark() !== undefined;
    } catch {
      exact = false;
    }
    return new PeakRss(exact, process.memoryUsage().rss);
  }

  read(): number {
    const now = process.memoryUsage().rss;
    if (this.exact) return Math.max(readHighWaterMark() ?? now, now);
    return Math.max(this.startRss, now);
  }
}

function readHighWaterMark(): number | undefined {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
