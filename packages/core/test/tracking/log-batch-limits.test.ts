import { describe, expect, it } from 'vitest';
import { LOG_BATCH_LIMITS, splitLogBatch } from '../../src/index.js';

const metric = (index: number) => ({ key: `m${index}`, value: index, timestamp: 1, step: 0 });
const pair = (prefix: string) => (index: number) => ({ key: `${prefix}${index}`, value: String(index) });

describe('splitLogBatch', () => {
  it('keeps every request within 1000 metrics, 100 params, 100 tags and 1000 items, in order', () => {
    const batch = {
      metrics: Array.from({ length: 2345 }, (_, index) => metric(index)),
      params: Array.from({ length: 250 }, (_, index) => pair('p')(index)),
      tags: Array.from({ length: 130 }, (_, index) => pair('t')(index)),
    };
    const requests = splitLogBatch(batch);
    for (const request of requests) {
      const [metrics, params, tags] = [request.metrics ?? [], request.params ?? [], request.tags ?? []];
      expect(metrics.length).toBeLessThanOrEqual(LOG_BATCH_LIMITS.metrics);
      expect(params.length).toBeLessThanOrEqual(LOG_BATCH_LIMITS.params);
      expect(tags.length).toBeLessThanOrEqual(LOG_BATCH_LIMITS.tags);
      expect(metrics.length + params.length + tags.length).toBeLessThanOrEqual(LOG_BATCH_LIMITS.total);
    }
    expect(requests.flatMap((request) => request.metrics)).toEqual(batch.metrics);
    expect(requests.flatMap((request) => request.params)).toEqual(batch.params);
    expect(requests.flatMap((request) => request.tags)).toEqual(batch.tags);
    // 100 params + 100 tags + 800 metrics, then 100 + 30 + 870, then the last 50 params and 675 metrics.
    expect(requests.map((request) => request.metrics?.length)).toEqual([800, 870, 675]);
  });

  it('sends nothing for an empty batch and one request for a small one', () => {
    expect(splitLogBatch({})).toEqual([]);
    expect(splitLogBatch({ metrics: [metric(1)] })).toEqual([{ metrics: [metric(1)], params: [], tags: [] }]);
  });
});
