import type { ProgressStream } from '../trainer/progress.js';
import { formatTable, formatValue } from './format.js';
import type { SweepPlan } from './plan.js';
import { connectRedis, jobStates, openQueue, type QueueSettings } from './queue.js';
import { collectResults, type TrialResult } from './results.js';
import { findTrialRuns } from './trial-runs.js';

type TrialState = 'finished' | 'running' | 'waiting' | 'retrying' | 'failed' | 'not started';

const ROW_LIMIT = 30;

/**
 * `interleave sweep <file> --status [--queue …]`: where each trial stands, from MLflow and,
 * for a queued sweep, from its job in the queue. Changes nothing.
 */
export async function printSweepStatus(plan: SweepPlan, out: ProgressStream, queue?: QueueSettings): Promise<void> {
  const results = await collectResults(plan, await findTrialRuns(plan.trials));
  const states = queue === undefined ? undefined : await queueJobStates(plan, queue);
  const rows = results.map((result) => ({ result, state: stateOf(result, states?.get(result.trialId)) }));
  const count = (state: TrialState) => rows.filter((row) => row.state === state).length;
  out.write(
    `sweep '${plan.name}' (id ${plan.sweepId}): ${plan.trials.length} trials: ${count('finished')} finished, ${count('running')} running, ` +
      `${count('waiting') + count('retrying')} waiting${count('retrying') > 0 ? ` (${count('retrying')} to retry)` : ''}, ${count('failed')} failed, ${count('not started')} not started\n`,
  );
  const unfinished = rows.filter((row) => row.state !== 'finished');
  const shown = rows.length <= ROW_LIMIT ? rows : unfinished.slice(0, ROW_LIMIT);
  if (shown.length === 0) return;
  const header = ['trial', ...plan.parameterKeys, 'state', 'run', 'attempts', 'why'];
  const table = shown.map(({ result, state }) => [
    String(result.index),
    ...plan.parameterKeys.map((key) => formatValue(result.params[key], 24)),
    state,
    result.runId ?? '',
    String(result.attempts),
    state === 'finished' ? '' : formatValue(result.error ?? '', 60),
  ]);
  out.write(`${formatTable(header, table)}\n`);
  if (shown.length < rows.length) out.write(`(${shown.length} of ${unfinished.length} unfinished trials shown)\n`);
}

async function queueJobStates(plan: SweepPlan, settings: QueueSettings): Promise<Map<string, string>> {
  const redis = await connectRedis(settings.url);
  const queue = openQueue(settings, redis);
  try {
    return await jobStates(queue, plan.trials);
  } finally {
    await queue.close();
    redis.disconnect();
  }
}

function stateOf(result: TrialResult, jobState: string | undefined): TrialState {
  if (result.status === 'FINISHED') return 'finished';
  switch (jobState) {
    case 'active':
      return 'running';
    case 'waiting':
    case 'prioritized':
    case 'waiting-children':
      return 'waiting';
    case 'delayed':
      return 'retrying';
    case 'failed':
    case 'completed':
      return 'failed';
  }
  if (result.status === 'MISSING') return 'not started';
  // Without a queue, a RUNNING run may be live or the leftover of a killed process.
  return result.status === 'RUNNING' ? 'running' : 'failed';
}
