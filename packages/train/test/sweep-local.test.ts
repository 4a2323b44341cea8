import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findRunsWithTag } from '@interleave/core';
import { describe, expect, it } from 'vitest';
import {
  exited,
  finishedPerTrial,
  interleaveAsync,
  interleaveSync,
  killGroup,
  TINY_GRID,
  trialRuns,
  waitFor,
  workspace,
} from './sweep-support.js';

describe('interleave sweep (local worker processes)', () => {
  it('survives SIGKILL mid-way: running it again finishes only the missing trials', async () => {
    const dir = workspace({ 'sweep.yaml': TINY_GRID });
    const started = performance.now();
    const first = interleaveAsync(['sweep', 'sweep.yaml', '--workers', '2'], dir);
    await waitFor('3 finished trials', async () => {
      const finished = (await trialRuns(dir)).filter((run) => run.status === 'FINISHED').length;
      return finished >= 3 ? finished : undefined;
    });
    // The sweep process and its trial processes, at once: as if the machine went down.
    killGroup(first);
    await exited(first);
    const killedAt = (performance.now() - started) / 1000;
    const afterKill = await trialRuns(dir);
    const finishedBefore = afterKill.filter((run) => run.status === 'FINISHED').length;
    const leftRunning = afterKill.filter((run) => run.status === 'RUNNING').length;
    expect(finishedBefore).toBeGreaterThanOrEqual(3);
    expect(finishedBefore).toBeLessThan(12);

    const rerunStarted = performance.now();
    const second = interleaveSync(['sweep', 'sweep.yaml', '--workers', '2'], dir);
    const rerunSeconds = (performance.now() - rerunStarted) / 1000;
    expect(second.stderr).toBe('');
    expect(second.status).toBe(0);
    const missing = 12 - finishedBefore;
    expect(second.stdout).toContain(`${finishedBefore} already finished, ${missing} to run`);
    expect(second.stdout).toContain(`12/12 trials finished (${missing} in this session)`);
    expect(second.stdout.match(/^trial \d+\/12 FINISHED/gm)).toHaveLength(missing);

    const runs = await trialRuns(dir);
    const perTrial = finishedPerTrial(runs);
    expect(perTrial.size).toBe(12);
    expect([...perTrial.values()].every((count) => count === 1)).toBe(true);
    // Runs the killed sweep left RUNNING are closed as KILLED, saying why.
    expect(runs.filter((run) => run.status === 'RUNNING')).toHaveLength(0);
    for (const run of runs.filter((candidate) => candidate.status === 'KILLED')) {
      expect(run.tags['interleave.killed_reason']).toMatch(/^abandoned: the process running it is gone/);
    }

    // One parent run, continued by the re-run and FINISHED now; every trial is its child.
    const parents = (await findRunsWithTag(join(dir, 'mlruns'), 'sweep-test', 'interleave.sweep_role', 'parent')).map(
      (run) => [run.runId, run.status],
    );
    expect(parents).toHaveLength(1);
    const [parentId, parentStatus] = parents[0] as [string, string];
    expect(parentStatus).toBe('FINISHED');
    for (const run of runs) expect(run.tags['mlflow.parentRunId']).toBe(parentId);
    const csvPath = /^results: (.*\.csv)$/m.exec(second.stdout)?.[1] as string;
    const csv = readFileSync(csvPath, 'utf8').trim().split('\n');
    expect(csv[0]).toMatch(/^trial,model\.d_model,train\.optimizer\.lr,seed,status,run_id,eval_accuracy,/);
    expect(csv.slice(1).filter((line) => line.includes(',FINISHED,'))).toHaveLength(12);
    const json = JSON.parse(readFileSync(csvPath.replace(/\.csv$/, '.json'), 'utf8'));
    expect(json.sweep.parent_run_id).toBe(parentId);
    expect(json.trials).toHaveLength(12);

    console.log(
      `kill-and-rerun: killed after ${killedAt.toFixed(1)}s with ${finishedBefore}/12 trials FINISHED and ${leftRunning} RUNNING; ` +
        `the re-run ran ${missing} trials in ${rerunSeconds.toFixed(1)}s`,
    );
  }, 300_000);

  it('exits non-zero naming the failed trial and why; running it again retries only that one', () => {
    const sweep = TINY_GRID.replace(
      /sweep:[\s\S]*$/,
      'sweep:\n  method: zip\n  parameters:\n    train.optimizer.lr: [1.0e-3, 1.0e+30]\n',
    );
    const dir = workspace({ 'sweep.yaml': sweep });
    const first = interleaveSync(['sweep', 'sweep.yaml', '--workers', '2'], dir);
    expect(first.status).toBe(1);
    expect(first.stdout).toMatch(
      /^trial 2 FAILED \(run \w+\): train\.optimizer\.lr=1e\+30: loss became NaN at step \d+/m,
    );
    expect(first.stdout).toContain(
      '1/2 trials finished (1 in this session), 1 not: run the same command again to retry them',
    );
    const csvPath = /^results: (.*\.csv)$/m.exec(first.stdout)?.[1] as string;
    expect(readFileSync(csvPath, 'utf8')).toMatch(
      /^2,1e\+30,FAILED,\w+,.*,loss became NaN at step \d+; lower train\.optimizer\.lr$/m,
    );

    const again = interleaveSync(['sweep', 'sweep.yaml', '--workers', '2'], dir);
    expect(again.status).toBe(1);
    expect(again.stdout).toContain('1 already finished, 1 to run');
  }, 120_000);
});
