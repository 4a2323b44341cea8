import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isServerUri, type Tracker } from '@interleave/core';
import type { ProgressStream } from '../trainer/progress.js';
import { describeParams } from './format.js';
import { sweepParents } from './parent-run.js';
import type { SweepPlan, TrialSpec } from './plan.js';
import { collectResults, resultsCsv, resultsJson, summarize, type TrialResult } from './results.js';
import type { TrialJob, TrialOutcome } from './trial-protocol.js';
import { findTrialRuns } from './trial-runs.js';

export interface SweepReport {
  readonly parentRunId: string;
  readonly results: readonly TrialResult[];
  readonly csvPath: string;
  readonly jsonPath: string;
  /** Trials this session ran to FINISHED (not counting those that had finished before). */
  readonly finishedNow: number;
  /** 0: every trial FINISHED; 1: some failed or are missing; 130: interrupted. */
  readonly exitCode: number;
}

/**
 * A sweep whose every trial had already finished, and whose last parent run completed: nothing
 * to run or to record again, so this only prints the summary and where the results are.
 */
export async function reportCompletedSweep(plan: SweepPlan, out: ProgressStream): Promise<SweepReport | undefined> {
  const latest = (await sweepParents(plan)).at(-1);
  if (latest?.status !== 'FINISHED') return undefined;
  const results = await collectResults(plan, await findTrialRuns(plan.trials));
  if (results.some((result) => result.status !== 'FINISHED')) return undefined;
  const csvPath = artifactDisplay(plan, latest.runId, latest.artifactUri, 'results.csv');
  const jsonPath = artifactDisplay(plan, latest.runId, latest.artifactUri, 'results.json');
  out.write(
    `\n${summarize(plan, results)}every trial had already finished; nothing to run\n` +
      `results: ${csvPath}\n         ${jsonPath}\nparent run: ${latest.runId}\n`,
  );
  return { parentRunId: latest.runId, results, csvPath, jsonPath, finishedNow: 0, exitCode: 0 };
}

/** The header lines every sweep session starts with. */
export function describePlan(plan: SweepPlan, finishedBefore: number): string {
  const keys = plan.parameterKeys.join(' × ');
  const duplicates = plan.duplicates > 0 ? ` (${plan.duplicates} repeated points dropped)` : '';
  return (
    `sweep '${plan.name}' (id ${plan.sweepId}): ${plan.trials.length} trials, ${plan.sweep.method} over ${keys}${duplicates}\n` +
    `${finishedBefore} already finished, ${plan.trials.length - finishedBefore} to run\n`
  );
}

/** The job a trial becomes once its sweep has a parent run. */
export function trialJob(trial: TrialSpec, parent: Tracker): TrialJob {
  return {
    ...trial,
    parentRunId: parent.runId,
    logFile: join(trialLogFolder(trial, parent), `trial-${trial.index}-${trial.trialId}.log`),
  };
}

/**
 * Where a trial's output is written as it runs: the parent run's `logs/` artifacts in a file
 * store; for a tracking server, whose artifacts are not a local folder, `.interleave/sweep-logs/`
 * in the working directory.
 */
function trialLogFolder(trial: TrialSpec, parent: Tracker): string {
  if (!isServerUri(trial.tracking.uri)) return join(parent.artifactLocation, 'logs');
  return resolve('.interleave', 'sweep-logs', parent.runId);
}

/** A local path for a file store's artifact; the run and artifact name for a server's. */
function artifactDisplay(plan: SweepPlan, runId: string, artifactUri: string, name: string): string {
  if (isServerUri(plan.tracking.uri)) return `artifact ${name} of run ${runId}`;
  return join(artifactUri.startsWith('file:') ? fileURLToPath(artifactUri) : artifactUri, name);
}

/** `trial 3/12 FINISHED in 4s: model.d_model=16 → eval accuracy 0.4012` */
export function describeOutcome(trial: TrialSpec, outcome: TrialOutcome): string {
  const head = `trial ${trial.index}/${trial.total} ${outcome.status} after ${outcome.seconds.toFixed(1)}s: ${describeParams(trial.params)}`;
  if (outcome.status === 'FINISHED') return `${head} → eval accuracy ${outcome.accuracy?.toFixed(4)}`;
  return `${head}: ${outcome.error ?? 'no reason given'}`;
}

/**
 * Reads every trial's result back from MLflow, writes results.csv and results.json as artifacts
 * of the parent run, ends the parent (FINISHED only when every trial is), and prints the summary.
 */
export async function finishSweep(
  plan: SweepPlan,
  parent: Tracker,
  outcomes: ReadonlyMap<string, TrialOutcome | string>,
  out: ProgressStream,
  interrupted: boolean,
): Promise<SweepReport> {
  const results = await collectResults(plan, await findTrialRuns(plan.trials), outcomes);
  await parent.logArtifact('results.csv', resultsCsv(plan, results));
  await parent.logArtifact('results.json', resultsJson(plan, results, parent.runId));
  const unfinished = results.filter((result) => result.status !== 'FINISHED');
  await parent.end(interrupted ? 'KILLED' : unfinished.length > 0 ? 'FAILED' : 'FINISHED');
  const csvPath = artifactDisplay(plan, parent.runId, parent.artifactLocation, 'results.csv');
  const jsonPath = artifactDisplay(plan, parent.runId, parent.artifactLocation, 'results.json');
  out.write(`\n${summarize(plan, results)}`);
  const finishedNow = [...outcomes.values()].filter(
    (outcome) => typeof outcome !== 'string' && outcome.status === 'FINISHED',
  ).length;
  out.write(
    `${results.length - unfinished.length}/${results.length} trials finished (${finishedNow} in this session)` +
      `${unfinished.length > 0 ? `, ${unfinished.length} not: run the same command again to retry them` : ''}\n` +
      `results: ${csvPath}\n         ${jsonPath}\n` +
      `parent run: ${parent.runId} (experiment '${plan.tracking.experiment}', ${plan.tracking.uri})\n`,
  );
  const exitCode = interrupted ? 130 : unfinished.length > 0 ? 1 : 0;
  return { parentRunId: parent.runId, results, csvPath, jsonPath, finishedNow, exitCode };
}
