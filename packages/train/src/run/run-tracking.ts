import { execFileSync } from 'node:child_process';
import { dirname } from 'node:path';
import {
  architectureName,
  type BackendChoice,
  flattenForParams,
  openTracker,
  resumeTracker,
  type Tracker,
} from '@interleave/core';
import { stringify } from 'yaml';
import { findResumableRun, restoreCheckpoint } from '../checkpoint/resume.js';
import type { ProgressStream } from '../trainer/progress.js';
import type { AssembledRun } from './assemble-run.js';
import type { PreparedRun } from './prepare-run.js';

/**
 * A new MLflow run, or — with `resumeRunId` — that run reopened after its last logged step,
 * with the trainer restored from its checkpoint (only if the run was trained with this config).
 */
export async function openRunTracker(
  prepared: PreparedRun,
  run: AssembledRun,
  options: { readonly runName: string; readonly resumeRunId?: string },
  out: ProgressStream,
): Promise<Tracker> {
  const { tracking } = prepared.loaded.config;
  if (options.resumeRunId === undefined) {
    return openTracker({ uri: tracking.uri, experiment: tracking.experiment, runName: options.runName });
  }
  const resumable = await findResumableRun(tracking.uri, tracking.experiment, options.resumeRunId, run.configHash);
  const tracker = await resumeTracker({
    uri: tracking.uri,
    runId: options.resumeRunId,
    afterStep: resumable.state.step,
  });
  try {
    await restoreCheckpoint(resumable.checkpointDirectory, run.trainer);
  } finally {
    await resumable.dispose();
  }
  out.write(`resuming run ${options.resumeRunId} from step ${resumable.state.step}\n`);
  return tracker;
}

/**
 * What makes a run reproducible and comparable: tags (backend, config hash and source, git
 * commit, architecture, plus `extraTags`), the flattened config and compute as params, and the
 * resolved config as the `config.yaml` artifact.
 */
export async function recordRunSetup(
  tracker: Tracker,
  prepared: PreparedRun,
  run: AssembledRun,
  backend: BackendChoice,
  extraTags: Readonly<Record<string, string>> = {},
): Promise<void> {
  const { loaded, layers } = prepared;
  await tracker.setTags({
    'interleave.backend': backend.name,
    'interleave.backend_detail': backend.detail,
    'interleave.config_hash': run.configHash,
    ...(loaded.file === undefined ? {} : { 'interleave.config_file': loaded.file, ...gitTags(loaded.file) }),
    'interleave.architecture': architectureName(layers),
    ...extraTags,
  });
  await tracker.logParams({
    ...flattenForParams(loaded.resolved),
    // Logged even when left at its default: it changes a step's speed and memory, not its results.
    'train.activation_checkpointing': run.trainer.train.activation_checkpointing,
    'train.step_replay': run.trainer.train.step_replay,
    'train.head_rows': run.trainer.train.head_rows,
    // As configured ('auto' stays 'auto'): a resumed run on another machine logs the same value.
    'train.batch_worker': run.trainer.train.batch_worker,
    'train.batch_threads': run.trainer.train.batch_threads,
    'model.parameters': run.model.parameters.count(),
    'compute.flops_per_token': run.flops.total,
    'compute.forward_flops_per_token': run.flops.forward,
    'model.state_bytes_per_sequence': run.state.bytes,
    'model.state_grows_with_length': run.state.growsWithLength,
  });
  await tracker.logArtifact('config.yaml', stringify(loaded.resolved));
}

/**
 * Ends the run: a run that trained every step is FINISHED unless `beforeFinish` gives a reason
 * it must not be (then KILLED, with the reason in the tag `interleave.killed_reason`).
 */
export async function endRun(
  tracker: Tracker,
  trained: 'FINISHED' | 'KILLED',
  beforeFinish: ((runId: string) => Promise<string | undefined>) | undefined,
): Promise<{ status: 'FINISHED' | 'KILLED'; killedReason?: string }> {
  const killedReason = trained === 'FINISHED' ? await beforeFinish?.(tracker.runId) : undefined;
  if (killedReason !== undefined) await tracker.setTags({ 'interleave.killed_reason': killedReason });
  const status = killedReason === undefined ? trained : 'KILLED';
  await tracker.end(status);
  return killedReason === undefined ? { status } : { status, killedReason };
}

/** Marks the run FAILED with the error's first line; never throws, so the error itself propagates. */
export async function failRun(tracker: Tracker | undefined, error: unknown): Promise<void> {
  const message = error instanceof Error ? error.message : String(error);
  await tracker?.setTags({ 'interleave.error': message.split('\n')[0]?.slice(0, 4000) ?? '' }).catch(() => undefined);
  await tracker?.end('FAILED').catch(() => undefined);
}

/** The git commit of the config's checkout, as MLflow's own clients tag it; none outside git. */
function gitTags(configFile: string): Record<string, string> {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], {
      cwd: dirname(configFile),
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .toString()
      .trim();
    return commit ? { 'mlflow.source.git.commit': commit } : {};
  } catch {
    return {};
  }
}
