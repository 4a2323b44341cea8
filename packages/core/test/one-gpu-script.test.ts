import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

// scripts/gpu/one-gpu.sh pins a process to one GPU of several (docs/gpu.md, "Several GPUs on one
// host"). Its namespace needs the NVIDIA device nodes, which no CI machine has; what can be checked
// here is that bad input stops it with one line saying what is wrong, before anything is mounted.
const SCRIPT = resolve(import.meta.dirname, '../../../scripts/gpu/one-gpu.sh');

function runScript(args: string[]) {
  const result = spawnSync('bash', [SCRIPT, ...args], { encoding: 'utf8' });
  return { status: result.status, stderr: result.stderr.trim(), stdout: result.stdout };
}

describe('scripts/gpu/one-gpu.sh', () => {
  it('prints its usage when the command is missing', () => {
    const { status, stderr } = runScript(['0']);
    expect(status).toBe(2);
    expect(stderr).toBe('usage: one-gpu.sh <gpu index> <command> [args...]');
  });

  it('rejects an index that is not a number', () => {
    const { status, stderr, stdout } = runScript(['first', 'true']);
    expect(status).toBe(2);
    expect(stderr).toBe("one-gpu.sh: the GPU index must be a number, got 'first'");
    expect(stdout).toBe('');
  });

  it('names the missing device node instead of running the command on another GPU', () => {
    const { status, stderr, stdout } = runScript(['97', 'echo', 'ran']);
    expect(status).toBe(2);
    expect(stderr.split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/^one-gpu\.sh: no \/dev\/nvidia97 on this host \(GPUs: \d+\)$/);
    expect(stdout).toBe('');
  });
});
