import { hostname } from 'node:os';
import { findRunsWithTag, type RunRecord } from '@interleave/core';
import type { TrackingTarget, TrialSpec } from './plan.js';

/** MLflow tags that tie runs to sweeps: how a sweep finds its parent run and its finished trials. */
export const SWEEP_TAGS = {
  sweepId: 'interleave.sweep_id',
  /** `parent` for the sweep's own run, `trial` for each trial's run. */
  role: 'interleave.sweep_role',
  trialId: 'interleave.trial_id',
  trialIndex: 'interleave.trial_index',
  /** The trial's parameter values as JSON; each one is also its own tag under `interleave.param.`. */
  trialParams: 'interleave.trial_params',
  /** `host:pid` of the process that writes the trial's run: how a leftover of a dead process is told apart. */
  owner: 'interleave.worker',
  paramPrefix: 'interleave.param.',
  parentRunId: 'mlflow.parentRunId',
  /** Set by the training run itself: why it failed, or why a complete run was not marked FINISHED. */
  error: 'interleave.error',
  killedReason: 'interleave.killed_reason',
} as const;

/** Every run of these trials (any status), by trial id, oldest first. */
export async function findTrialRuns(trials: readonly TrialSpec[]): Promise<Map<string, RunRecord[]>> {
  const byTrial = new Map<string, RunRecord[]>();
  const wanted = new Set(trials.map((trial) => trial.trialId));
  const targets = new Map<string, TrackingTarget>();
  for (const trial of trials) targets.set(`${trial.tracking.uri}\n${trial.tracking.experiment}`, trial.tracking);
  for (const target of targets.values()) {
    for (const run of await findRunsWithTag(target.uri, target.experiment, SWEEP_TAGS.trialId)) {
      const trialId = run.tags[SWEEP_TAGS.trialId] as string;
      if (!wanted.has(trialId)) continue;
      const runs = byTrial.get(trialId) ?? [];
      runs.push(run);
      byTrial.set(trialId, runs);
    }
  }
  return byTrial;
}

/** The run that completed this trial, if one did. */
export function finishedRunOf(runs: readonly RunRecord[] | undefined): RunRecord | undefined {
  return runs?.find((run) => run.status === 'FINISHED');
}

/** Every run of trial `trialId` in `target`, oldest first. */
export function runsOfTrial(target: TrackingTarget, trialId: string): Promise<RunRecord[]> {
  return findRunsWithTag(target.uri, target.experiment, SWEEP_TAGS.trialId, trialId);
}

/** A FINISHED run of trial `trialId` in `target`, other than `exceptRunId`. */
export async function findFinishedTrialRun(
  target: TrackingTarget,
  trialId: string,
  exceptRunId?: string,
): Promise<RunRecord | undefined> {
  const runs = await runsOfTrial(target, trialId);
  return runs.find((run) => run.status === 'FINISHED' && run.runId !== exceptRunId);
}

/** MLflow keys allow letters, digits, `_ - . /` and space; anything else in a key path (`[0]`) becomes `_`. */
export function mlflowSafeKey(key: string): string {
  return key.replace(/[^\p{L}\p{N}_\-. /]/gu, '_').slice(0, 250);
}

/** The tag that holds one parameter's value on a trial's run. */
export function paramTagKey(key: string): string {
  return mlflowSafeKey(`${SWEEP_TAGS.paramPrefix}${key}`);
}

/** This process, as the `interleave.worker` tag names it. */
export function runOwner(): string {
  return `${hostname()}:${process.pid}`;
}
