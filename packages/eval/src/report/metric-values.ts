import { readMetricHistory } from '@interleave/core';

/**
 * The value of metric `key` at the run's latest step (the latest logged one among equal steps:
 * a resumed run may log a step again). Undefined when the metric was never logged.
 */
export async function readLastValue(uri: string, runId: string, key: string): Promise<number | undefined> {
  const history = await readMetricHistory(uri, runId, key);
  let latest: (typeof history)[number] | undefined;
  for (const point of history) if (latest === undefined || point.step >= latest.step) latest = point;
  return latest?.value;
}

/** The latest step at which metric `key` was logged, or undefined when it never was. */
export async function readLastStep(uri: string, runId: string, key: string): Promise<number | undefined> {
  const history = await readMetricHistory(uri, runId, key);
  let latest: number | undefined;
  for (const point of history) if (latest === undefined || point.step > latest) latest = point.step;
  return latest;
}
