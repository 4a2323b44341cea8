import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { findRunFolder, openTracker, runHoldingArtifact } from '../../src/index.js';

async function storeWithOneRun() {
  const dir = await mkdtemp(join(tmpdir(), 'interleave-runs-'));
  const uri = join(dir, 'mlruns');
  const tracker = await openTracker({ uri, experiment: 'lookup', runName: 'r' });
  await tracker.logArtifact('checkpoint/model.safetensors', 'weights');
  await tracker.end('FINISHED');
  return { dir, uri, tracker };
}

describe('finding file-store runs from ids and paths', () => {
  it('finds a run folder by id, and nothing for an unknown id', async () => {
    const { uri, tracker } = await storeWithOneRun();
    const folder = await findRunFolder(uri, tracker.runId);
    expect(folder).toBe(join(uri, tracker.experimentId, tracker.runId));
    expect(await findRunFolder(uri, '0'.repeat(32))).toBeUndefined();
  });

  it('finds the run whose artifacts hold a file, at any depth, and none for a file elsewhere', async () => {
    const { dir, uri, tracker } = await storeWithOneRun();
    const expected = { uri, runId: tracker.runId, directory: join(uri, tracker.experimentId, tracker.runId) };
    expect(runHoldingArtifact(join(tracker.artifactLocation, 'checkpoint', 'model.safetensors'))).toEqual(expected);
    expect(runHoldingArtifact(join(tracker.artifactLocation, 'config.yaml'))).toEqual(expected);
    const loose = join(dir, 'artifacts', 'model.safetensors');
    await writeFile(join(dir, 'model.safetensors'), 'weights');
    expect(runHoldingArtifact(join(dir, 'model.safetensors'))).toBeUndefined();
    expect(runHoldingArtifact(loose)).toBeUndefined();
  });
});
