import type { LogBatch, MetricRecord, TrackingStore } from '../store.js';
import { isTransient, MlflowUnreachableError } from './errors.js';
import { LOG_BATCH_LIMITS } from './log-batch-limits.js';
import type { PendingEntry, WalEntry, WriteAheadLog } from './write-ahead-log.js';

/** The outcome of one `sendPending` call. */
export interface SendResult {
  /** Entries acknowledged by this call. */
  sent: number;
  /** Entries still waiting. */
  backlog: number;
  /** The transient failure that stopped this call (the server is down, busy or failing), if any. */
  error?: Error;
}

/**
 * Sends what a write-ahead log holds beyond its acknowledged offset, one log-batch request at a
 * time, and moves the offset after each acknowledged request, so a crash or an outage loses
 * nothing and repeats nothing: after a request that may have reached the server without an
 * answer, its metrics are first looked up on the server and only the missing ones are sent.
 * Params and tags may be sent again (the same value is accepted), status updates too.
 * Transient failures stop the call and are returned; other failures (a rejected value) throw.
 */
export async function sendPending(log: WriteAheadLog, store: TrackingStore): Promise<SendResult> {
  let sent = 0;
  for (;;) {
    const progress = log.progress();
    const chunk = nextRequest(log.pending(progress.offset, LOG_BATCH_LIMITS.total));
    if (chunk.entries.length === 0) return { sent, backlog: 0 };
    try {
      if (chunk.update) {
        await store.updateRun(log.header.runId, { status: chunk.update.status, endTime: chunk.update.endTime });
      } else {
        const batch = toBatch(chunk.entries.map((pending) => pending.entry));
        if (progress.uncertain) batch.metrics = await notYetOnServer(store, log.header.runId, batch.metrics ?? []);
        await store.logBatch(log.header.runId, batch);
      }
    } catch (error) {
      if (!isTransient(error)) throw error;
      const uncertain = progress.uncertain || (error instanceof MlflowUnreachableError && error.maybeApplied);
      if (uncertain !== progress.uncertain) await log.saveProgress({ offset: progress.offset, uncertain });
      return { sent, backlog: log.pending(progress.offset).length, error: error as Error };
    }
    const end = chunk.entries.at(-1)?.end as number;
    await log.saveProgress({ offset: end, uncertain: false });
    sent += chunk.entries.length;
  }
}

/**
 * The entries of the next request: a status update alone (it must follow what was logged
 * before it), or a run of metrics, params and tags within one request's limits.
 */
function nextRequest(pending: PendingEntry[]): {
  entries: PendingEntry[];
  update?: Extract<WalEntry, { kind: 'update' }>;
} {
  const first = pending[0];
  if (first === undefined) return { entries: [] };
  if (first.entry.kind === 'update') return { entries: [first], update: first.entry };
  const entries: PendingEntry[] = [];
  const counts = { metric: 0, param: 0, tag: 0 };
  for (const item of pending) {
    const kind = item.entry.kind;
    if (kind === 'update') break;
    if (counts[kind] + 1 > LOG_BATCH_LIMITS[`${kind}s`]) break;
    counts[kind]++;
    entries.push(item);
  }
  return { entries };
}

function toBatch(entries: WalEntry[]): LogBatch {
  const batch: Required<LogBatch> = { metrics: [], params: [], tags: [] };
  for (const entry of entries) {
    if (entry.kind === 'metric') {
      batch.metrics.push({ key: entry.key, value: entry.value, timestamp: entry.timestamp, step: entry.step });
    } else if (entry.kind === 'param') batch.params.push({ key: entry.key, value: entry.value });
    else if (entry.kind === 'tag') batch.tags.push({ key: entry.key, value: entry.value });
  }
  return batch;
}

/** The metrics of `metrics` that the server does not hold yet (as many copies as are missing). */
async function notYetOnServer(store: TrackingStore, runId: string, metrics: MetricRecord[]): Promise<MetricRecord[]> {
  const onServer = new Map<string, number>();
  for (const key of new Set(metrics.map((metric) => metric.key))) {
    for (const point of await store.getMetricHistory(runId, key)) {
      const id = pointId(key, point.step, point.timestamp, point.value);
      onServer.set(id, (onServer.get(id) ?? 0) + 1);
    }
  }
  return metrics.filter((metric) => {
    const id = pointId(metric.key, metric.step, metric.timestamp, metric.value);
    const left = onServer.get(id) ?? 0;
    if (left === 0) return true;
    onServer.set(id, left - 1);
    return false;
  });
}

function pointId(key: string, step: number, timestamp: number, value: number): string {
  return `${key}\n${step}\n${timestamp}\n${Number.isNaN(value) ? 'nan' : value}`;
}
