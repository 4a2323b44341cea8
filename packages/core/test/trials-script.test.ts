import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

// scripts/gpu/trials.sh runs a plan of trials in the background across short device calls
// (docs/gpu.md, "Trials across short device calls"). On the GPU machine it starts the bundle of
// scripts/pack-gpu.sh under one-gpu.sh; here a stand-in bundle takes their place: a setup.sh that
// does nothing, a one-gpu.sh that runs its command as is, and an interleave.mjs that records what it
// was asked and writes an MLflow-like run folder with a checkpoint, as `train` does.
const SCRIPT = resolve(import.meta.dirname, '../../../scripts/gpu/trials.sh');

const FAKE_CLI = `
import { mkdirSync, writeFileSync } from 'node:fs';
const args = process.argv.slice(2);
console.log('args ' + JSON.stringify(args));
if (args[0] === 'train') {
  const uri = args.find((a) => a.startsWith('tracking.uri=')).slice('tracking.uri='.length);
  const run = uri + '/1/run-' + Date.now();
  mkdirSync(run + '/artifacts/checkpoint', { recursive: true });
  writeFileSync(run + '/artifacts/checkpoint/model.safetensors', 'weights');
  writeFileSync(run + '/meta.yaml', 'status: 3');
  console.log('final test accuracy 1.0000 (loss 0.0001, 3000 examples)');
}
`;

let work: string;
let out: string;
let trials: string;

function run(args: string[], timeout = 60_000) {
  const result = spawnSync('bash', [SCRIPT, ...args], {
    cwd: work,
    encoding: 'utf8',
    timeout,
    env: { ...process.env, OUT: out, TRIALS_DIR: trials, TRIALS_BACKEND: 'wasm', TRIALS_POLL_SECONDS: '0.2' },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr.trim() };
}

function archiveListing(name: string): string[] {
  const listed = spawnSync('tar', ['-tzf', join(out, name)], { encoding: 'utf8' });
  expect(listed.status).toBe(0);
  return listed.stdout.split('\n').filter(Boolean);
}

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'interleave-trials-'));
  out = join(work, 'out');
  trials = join(work, 'trials');
  const bundle = join(work, 'bundle');
  mkdirSync(out);
  mkdirSync(bundle);
  writeFileSync(join(bundle, 'setup.sh'), 'echo "stand-in setup"\n');
  writeFileSync(join(bundle, 'one-gpu.sh'), '#!/usr/bin/env bash\nshift\nexec "$@"\n');
  chmodSync(join(bundle, 'one-gpu.sh'), 0o755);
  writeFileSync(join(bundle, 'interleave.mjs'), FAKE_CLI);
});

afterEach(() => {
  run(['stop', '5']);
  rmSync(work, { recursive: true, force: true });
});

describe('scripts/gpu/trials.sh', () => {
  it('runs each queue in order, logs every trial, and packs stores per GPU with checkpoints apart', () => {
    writeFileSync(
      join(work, 'plan'),
      [
        '# a comment',
        '@checkpoints first',
        "first 0 train configs/x.yaml --set 'model.layers=[{block: mamba}]'",
        'first 0 eval-last --task induction_extrapolation',
        'second 1 echo "queue dir $QUEUE_DIR, store $STORE, checkout $CHECKOUT"',
        '',
      ].join('\n'),
    );
    const launched = run(['launch', 'plan', 'bundle', '0']);
    expect(launched.stderr).toBe('');
    expect(launched.status).toBe(0);
    const watched = run(['watch', '30']);
    expect(watched.stdout).toMatch(/-- first: trial 2 of 2, finished/);
    expect(watched.stdout).toMatch(/-- second: trial 1 of 1, finished/);

    // `train` is the CLI's train with the queue's own store; quotes in the plan survive.
    const trainLog = readFileSync(join(trials, 'first/1.log'), 'utf8');
    expect(trainLog).toContain(
      `args ["train","configs/x.yaml","--set","model.layers=[{block: mamba}]","--set","tracking.uri=${trials}/first/mlruns"]`,
    );
    expect(trainLog).toMatch(/# \S+ exit 0\n$/);
    // `eval-last` evaluates the run the queue wrote last.
    const evalLog = readFileSync(join(trials, 'first/2.log'), 'utf8');
    expect(evalLog).toMatch(new RegExp(`args \\["eval","${trials}/first/mlruns/1/run-\\d+","--task"`));
    expect(readFileSync(join(trials, 'second/1.log'), 'utf8')).toContain(
      `queue dir ${trials}/second, store ${trials}/second/mlruns, checkout ${work}`,
    );

    const gpu0 = archiveListing('trials-gpu0.tar.gz');
    expect(gpu0).toContain('first/1.log');
    expect(gpu0).toContain('plan');
    expect(gpu0.some((path) => path.startsWith('second'))).toBe(false);
    expect(gpu0.some((path) => path.includes('checkpoint'))).toBe(false);
    expect(archiveListing('trials-gpu1.tar.gz')).toContain('second/1.log');
    const checkpoints = archiveListing('checkpoints.tar.gz');
    expect(
      checkpoints.some((path) => /^first\/mlruns\/1\/run-\d+\/artifacts\/checkpoint\/model\.safetensors$/.test(path)),
    ).toBe(true);
  });

  it('stops on stop: the running trial gets SIGTERM and the rest of its queue does not start', () => {
    writeFileSync(join(work, 'plan'), ['slow 0 sleep 120', 'slow 0 echo never ran', ''].join('\n'));
    expect(run(['launch', 'plan', 'bundle', '1']).status).toBe(0);
    const stopped = run(['stop', '20']);
    expect(stopped.stdout).toMatch(/-- slow: trial 1 of 2, finished/);
    expect(readFileSync(join(trials, 'slow/1.log'), 'utf8')).toMatch(/# \S+ exit 143\n$/);
    expect(existsSync(join(trials, 'slow/2.log'))).toBe(false);
  });

  it('refuses a second launch on the same machine, and a plan line it cannot read, before starting anything', () => {
    writeFileSync(join(work, 'plan'), 'one 0 true\n');
    expect(run(['launch', 'plan', 'bundle', '0']).status).toBe(0);
    const again = run(['launch', 'plan', 'bundle', '0']);
    expect(again.status).toBe(2);
    expect(again.stderr).toBe(`trials.sh: ${trials} exists: one launch per machine (watch or stop it)`);

    rmSync(trials, { recursive: true, force: true });
    writeFileSync(join(work, 'bad-plan'), '# header\nqueue-without-gpu train configs/x.yaml\n');
    const bad = run(['launch', 'bad-plan', 'bundle', '0']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toBe(
      'trials.sh: bad-plan:2: expected <queue> <gpu index> <command> or <name> pool <command>, got: queue-without-gpu train configs/x.yaml',
    );
    expect(existsSync(trials)).toBe(false);

    writeFileSync(join(work, 'pool-plan'), 'a pool true\nb pool true\n');
    expect(run(['launch', 'pool-plan', 'bundle', '0']).stderr).toBe(
      'trials.sh: pool-plan: pool trials but no @pool line says how many workers run them on which GPU',
    );
    writeFileSync(join(work, 'pool-plan'), '@pool 0x2\na pool true\na pool false\n');
    expect(run(['launch', 'pool-plan', 'bundle', '0']).stderr).toBe(
      'trials.sh: pool-plan:3: the pool trial name a is used before: each pool trial needs its own',
    );
    writeFileSync(join(work, 'pool-plan'), '@pool 0:2\na pool true\n');
    expect(run(['launch', 'pool-plan', 'bundle', '0']).stderr).toBe(
      'trials.sh: pool-plan:1: @pool needs <gpu>x<workers>[+<seconds>], e.g. 0x4, got: 0:2',
    );
    expect(existsSync(trials)).toBe(false);

    const noBundle = run(['launch', 'plan', 'missing', '0']);
    expect(noBundle.stderr).toBe("trials.sh: no bundle in 'missing' (scripts/pack-gpu.sh writes one)");
  });
  it('runs every pool trial exactly once, on whichever GPU has a free worker, and packs them apart', () => {
    writeFileSync(
      join(work, 'plan'),
      [
        '@pool 0x2 1x1+1',
        '@checkpoints last',
        'queued 0 echo from a queue',
        'long pool sleep 2',
        'short-1 pool echo one',
        'short-2 pool echo two',
        'short-3 pool echo three',
        'last pool train configs/y.yaml',
        '',
      ].join('\n'),
    );
    expect(run(['launch', 'plan', 'bundle', '0']).status).toBe(0);
    const watched = run(['watch', '30']);
    expect(watched.stdout).toMatch(/-- queued: trial 1 of 1, finished/);
    for (const name of ['long', 'short-1', 'short-2', 'short-3', 'last']) {
      expect(watched.stdout).toMatch(new RegExp(`-- ${name} \\(pool\\): finished on GPU [01], exit 0`));
      const log = readFileSync(join(trials, name, '1.log'), 'utf8');
      // Claimed once: one command line and one exit line.
      expect(log.match(/^# \S+ exit /gm)).toHaveLength(1);
      expect(['0', '1']).toContain(readFileSync(join(trials, name, 'gpu'), 'utf8').trim());
    }
    // The long trial held one worker while the others took the rest.
    expect(readFileSync(join(trials, 'short-3/1.log'), 'utf8')).toContain('three');
    const pooled = archiveListing('trials-pool.tar.gz');
    expect(pooled).toContain('long/1.log');
    expect(pooled).toContain('pool-0-2.runner.log');
    expect(pooled.some((path) => path.startsWith('queued'))).toBe(false);
    expect(pooled.some((path) => path.includes('checkpoint'))).toBe(false);
    expect(archiveListing('trials-gpu0.tar.gz')).toContain('queued/1.log');
    expect(archiveListing('checkpoints.tar.gz').some((path) => path.startsWith('last/mlruns/'))).toBe(true);
  });
});
