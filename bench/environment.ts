import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import type { BackendChoice } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';

/** Where and with what a benchmark ran: printed above the tables and written to the JSON. */
export interface BenchEnvironment {
  readonly date: string;
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  /** 1-, 5- and 15-minute load averages at the start: other work on the machine skews timings. */
  readonly loadAverage: readonly number[];
  readonly node: string;
  readonly tfjs: string;
  readonly backend: string;
  readonly backendDetail: string;
  /** Threads the fused scan kernels may use (INTERLEAVE_KERNEL_THREADS), also given to the peer. */
  readonly kernelThreads: number;
  readonly command: string;
}

export function describeEnvironment(backend: BackendChoice, kernelThreads: number, argv: readonly string[]) {
  return {
    date: new Date().toISOString(),
    cpu: cpuModel(),
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    loadAverage: loadavg().map((value) => Math.round(value * 100) / 100),
    node: process.version,
    tfjs: tf.version.tfjs,
    backend: backend.name,
    backendDetail: backend.detail,
    kernelThreads,
    command: ['pnpm bench', ...argv].join(' '),
  } satisfies BenchEnvironment;
}

/** The model name from /proc/cpuinfo (Linux), else what Node reports. */
function cpuModel(): string {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (match?.[1]) return match[1].trim();
  } catch {
    // Not Linux: fall through.
  }
  return cpus()[0]?.model ?? 'unknown CPU';
}

export function renderEnvironment(environment: BenchEnvironment): string {
  return [
    `machine: ${environment.cpu}, ${environment.cores} cores, ${environment.memoryGiB} GiB (load average ${environment.loadAverage.join(' / ')} at start)`,
    `software: Node ${environment.node}, tfjs ${environment.tfjs}, backend ${environment.backendDetail}, fused-kernel threads ${environment.kernelThreads}`,
    `date: ${environment.date}`,
    `command: ${environment.command}`,
  ].join('\n');
}
