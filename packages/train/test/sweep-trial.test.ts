import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findRunsWithTag } from '@interleave/core';
import { describe, expect, it } from 'vitest';
import { finalWeightsFile } from '../src/run/train-run.js';
import { planSweep } from '../src/sweep/plan.js';
import { runTrial } from '../src/sweep/run-trial.js';
import type { TrialJob } from '../src/sweep/trial-protocol.js';
import { SWEEP_TAGS } from '../src/sweep/trial-runs.js';
import { TINY_GRID, workspace } from './sweep-support.js';

/** A tiny two-trial sweep whose runs go to a store of its own. */
async function planTinySweep() {
  const dir = workspace({
    'sweep.yaml': TINY_GRID.replace('train.optimizer.lr: [1.0e-3, 3.0e-3, 1.0e-2]', 'train.optimizer.lr: [1.0e-3]')
      .replace('seed: [1, 2]', 'seed: [1]')
      .replace('uri: ./mlruns', 'uri: mlruns'),
  });
  const plan = await planSweep(join(dir, 'sweep.yaml'), [`tracking.uri=${join(dir, 'mlruns')}`]);
  return { dir, plan };
}

const PARENT_RUN = 'a'.repeat(32);
const running = () => ({ stopSignal: { stopped: false }, beforeFinish: async () => undefined });

/** The `__metadata__` of a safetensors file, read straight from its JSON header. */
function safetensorsMetadata(file: string): Record<string, string> {
  const bytes = readFileSync(file);
  const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('utf8'));
  return (header as { __metadata__: Record<string, string> }).__metadata__;
}

describe('a sweep trial', () => {
  it('trains from the config data its job carries: the sweep file is not needed once planned', async () => {
    const { dir, plan } = await planTinySweep();
    expect(plan.trials).toHaveLength(2);
    const trial = plan.trials[1]!;
    // Once planned, a trial needs nothing from the sweep file, as on a worker of another machine.
    rmSync(join(dir, 'sweep.yaml'));

    const outcome = await runTrial({ ...trial, parentRunId: PARENT_RUN }, running());
    expect(outcome).toMatchObject({ trialId: trial.trialId, status: 'FINISHED' });

    const [run] = await findRunsWithTag(
      trial.tracking.uri,
      trial.tracking.experiment,
      SWEEP_TAGS.trialId,
      trial.trialId,
    );
    expect(run?.runId).toBe(outcome.runId);
    expect(run?.params['model.d_model']).toBe('16');
    // The run names the sweep file it came from, not a temporary copy of its config.
    expect(run?.tags['interleave.config_file']).toBe(join(dir, 'sweep.yaml'));
    expect(run?.tags[SWEEP_TAGS.parentRunId]).toBe(PARENT_RUN);
    const metadata = safetensorsMetadata(finalWeightsFile(fileURLToPath(run!.artifactUri)));
    expect(metadata.step).toBe('3');
    expect(metadata.config_hash).toBe(trial.trialId);
    expect(metadata['interleave.config_file']).toBeUndefined();
  });

  it('fails, without retries, when the config it carries is not the one planned', async () => {
    const { plan } = await planTinySweep();
    const trial = plan.trials[0]!;
    const tampered: TrialJob = {
      ...trial,
      config: trial.config.replace('steps: 3', 'steps: 4'),
      parentRunId: PARENT_RUN,
    };
    const outcome = await runTrial(tampered, running());
    expect(outcome.status).toBe('FAILED');
    expect(outcome.deterministic).toBe(true);
    expect(outcome.error).toMatch(
      new RegExp(`^trial 1's config hashes to [0-9a-f]{16}, not to its id ${trial.trialId}:`),
    );
    expect(outcome.runId).toBeUndefined();
  });
});
