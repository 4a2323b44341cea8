import type { LogBatch } from '../store.js';

/** What one `runs/log-batch` request may hold (MLflow's REST API documentation, "Log Batch"). */
export const LOG_BATCH_LIMITS = { metrics: 1000, params: 100, tags: 100, total: 1000 } as const;

/**
 * Splits `batch` into requests within MLflow's limits, in order: each request takes as many
 * params and tags as fit and fills the rest with metrics. An empty batch gives no request.
 */
export function splitLogBatch(batch: LogBatch): LogBatch[] {
  const metrics = [...(batch.metrics ?? [])];
  const params = [...(batch.params ?? [])];
  const tags = [...(batch.tags ?? [])];
  const requests: LogBatch[] = [];
  while (metrics.length > 0 || params.length > 0 || tags.length > 0) {
    const partParams = params.splice(0, LOG_BATCH_LIMITS.params);
    const partTags = tags.splice(0, LOG_BATCH_LIMITS.tags);
    const room = Math.min(LOG_BATCH_LIMITS.metrics, LOG_BATCH_LIMITS.total - partParams.length - partTags.length);
    const partMetrics = metrics.splice(0, room);
    requests.push({ metrics: partMetrics, params: partParams, tags: partTags });
  }
  return requests;
}
