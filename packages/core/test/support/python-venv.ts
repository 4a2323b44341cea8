import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A Python virtual environment that tests use to check our files against the real Python
 * libraries (MLflow, safetensors, torch). It lives in `<repo>/.venv-<name>` (git-ignored) and is
 * reused across runs: a later run only checks that the pinned packages are importable.
 */
export interface PythonVenv {
  /** The venv's folder. */
  readonly root: string;
  /** The venv's python interpreter. */
  readonly python: string;
  /** Path of a console script the venv installed, e.g. `bin('mlflow')`. */
  bin(tool: string): string;
}

export interface EnsurePythonVenvOptions {
  /**
   * Modules that must import for the venv to count as ready. Defaults to each requirement's
   * distribution name with `-` turned into `_`, which is right for mlflow, safetensors, torch.
   */
  imports?: string[];
  /** How long to wait for another process that is installing into the same venv. */
  lockTimeoutMs?: number;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

const DEFAULT_LOCK_TIMEOUT_MS = 30 * 60_000;

/**
 * Returns a venv named `name` with exactly `requirements` (pip specifiers, pinned with `==`
 * so that versions can be checked) installed, creating or repairing it when needed.
 * Throws (never skips) when Python or pip cannot provide it, so a missing check is loud.
 */
export async function ensurePythonVenv(
  name: string,
  requirements: string[],
  options: EnsurePythonVenvOptions = {},
): Promise<PythonVenv> {
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new Error(`venv name '${name}' must be [A-Za-z0-9_-]+`);
  const root = join(findRepoRoot(), `.venv-${name}`);
  const venv = describeVenv(root);
  const imports = options.imports ?? requirements.map(importNameOf);

  if (await isReady(venv, requirements, imports)) return venv;

  return withDirectoryLock(`${root}.lock`, options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS, async () => {
    // Another process may have finished the install while this one waited for the lock.
    if (await isReady(venv, requirements, imports)) return venv;
    await createVenv(venv);
    const install = await runCommand(venv.python, [
      '-m',
      'pip',
      'install',
      '--disable-pip-version-check',
      ...requirements,
    ]);
    if (install.code !== 0) {
      throw new Error(
        `pip could not install ${requirements.join(' ')} into ${root} (exit ${install.code}):\n${tail(install.stdout + install.stderr)}`,
      );
    }
    const problem = await readinessProblem(venv, requirements, imports);
    if (problem) throw new Error(`venv ${root} is still not usable after pip install: ${problem}`);
    return venv;
  });
}

/** Runs a program and collects its output; never throws for a non-zero exit. */
export function runCommand(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
    // A program that exits without reading its input closes the pipe (EPIPE): its exit code tells.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

function describeVenv(root: string): PythonVenv {
  const binDir = join(root, process.platform === 'win32' ? 'Scripts' : 'bin');
  const suffix = process.platform === 'win32' ? '.exe' : '';
  return { root, python: join(binDir, `python${suffix}`), bin: (tool) => join(binDir, `${tool}${suffix}`) };
}

function findRepoRoot(): string {
  let directory = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(directory, 'pnpm-workspace.yaml'))) {
    const parent = dirname(directory);
    if (parent === directory) throw new Error('could not find the repository root (pnpm-workspace.yaml)');
    directory = parent;
  }
  return directory;
}

function importNameOf(requirement: string): string {
  const distribution = requirement.split(/[<>=!~;[ ]/)[0] ?? requirement;
  return distribution.trim().replaceAll('-', '_');
}

async function isReady(venv: PythonVenv, requirements: string[], imports: string[]): Promise<boolean> {
  if (!existsSync(venv.python)) return false;
  return (await readinessProblem(venv, requirements, imports)) === undefined;
}

/**
 * Asks the venv's own interpreter whether every pinned version is installed and every module
 * imports, so a half-deleted or half-installed venv is repaired rather than trusted.
 */
async function readinessProblem(
  venv: PythonVenv,
  requirements: string[],
  imports: string[],
): Promise<string | undefined> {
  const pins = requirements.flatMap((requirement) => {
    const match = /^\s*([A-Za-z0-9_.-]+)\s*==\s*([^\s;]+)\s*$/.exec(requirement);
    return match ? [[match[1], match[2]]] : [];
  });
  const script = [
    'import importlib, importlib.metadata, json, sys',
    'pins, modules = json.loads(sys.stdin.read())',
    'for dist, wanted in pins:',
    '    try:',
    '        found = importlib.metadata.version(dist)',
    '    except importlib.metadata.PackageNotFoundError:',
    '        sys.exit(f"{dist} is not installed")',
    '    if found != wanted:',
    '        sys.exit(f"{dist} is {found}, wanted {wanted}")',
    'for module in modules:',
    '    importlib.import_module(module)',
  ].join('\n');
  try {
    const result = await runCommand(venv.python, ['-c', script], { input: JSON.stringify([pins, imports]) });
    return result.code === 0 ? undefined : tail(result.stderr || result.stdout, 2000);
  } catch (error) {
    return String(error);
  }
}

async function createVenv(venv: PythonVenv): Promise<void> {
  // A venv whose interpreter no longer runs (moved, Python upgraded) cannot be repaired by pip.
  if (existsSync(venv.root)) {
    const probe = await runCommand(venv.python, ['-c', 'import sys']).catch(() => undefined);
    if (probe?.code === 0) return;
    await rm(venv.root, { recursive: true, force: true });
  }
  const basePython = process.env.PYTHON ?? 'python3';
  await requireVenvCapablePython(basePython);
  const created = await runCommand(basePython, ['-m', 'venv', venv.root]).catch((error: unknown) => ({
    code: -1,
    stdout: '',
    stderr: String(error),
  }));
  if (created.code !== 0) {
    throw new Error(`'${basePython} -m venv ${venv.root}' failed (exit ${created.code}):\n${tail(created.stderr)}`);
  }
}

/**
 * Fails with one line naming what to install when `basePython` is missing or cannot make a venv
 * with pip in it (Debian splits `ensurepip`, which `python -m venv` needs, into python3-venv).
 */
async function requireVenvCapablePython(basePython: string): Promise<void> {
  const probe = await runCommand(basePython, ['-c', 'import venv, ensurepip']).catch(() => undefined);
  if (probe?.code === 0) return;
  const found = probe === undefined ? 'was not found' : 'has no venv/ensurepip module';
  throw new MissingPrerequisiteError(
    `python3 with venv is needed for the tests that check our files with real Python tools (MLflow, safetensors, PyTorch, Redis), and '${basePython}' ${found}: install it (Debian/Ubuntu: apt-get install -y python3 python3-venv) or set PYTHON to such an interpreter`,
  );
}

/** An error that is its own one-line explanation: the stack would only bury it. */
class MissingPrerequisiteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MissingPrerequisiteError';
    this.stack = `${this.name}: ${message}`;
  }
}

/**
 * Holds `lockDir` (created with an exclusive mkdir, atomic across processes) while `work` runs.
 * A lock left by a dead process on this host is taken over, so a killed test run does not block
 * the next one forever.
 */
async function withDirectoryLock<T>(lockDir: string, timeoutMs: number, work: () => Promise<T>): Promise<T> {
  const owner = join(lockDir, 'owner.json');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await mkdir(lockDir);
      await writeFile(owner, JSON.stringify({ pid: process.pid, host: hostname() }));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    if (await isAbandoned(lockDir, owner)) {
      await rm(lockDir, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${lockDir}; remove it if no install is running`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  try {
    return await work();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}

async function isAbandoned(lockDir: string, ownerFile: string): Promise<boolean> {
  let owner: { pid?: number; host?: string };
  try {
    owner = JSON.parse(await readFile(ownerFile, 'utf8'));
  } catch {
    // The owner writes its file right after mkdir; only a lock that stayed ownerless for a while
    // belongs to a process that died in between.
    const created = await stat(lockDir).catch(() => undefined);
    return created !== undefined && Date.now() - created.mtimeMs > 60_000;
  }
  if (owner.host !== hostname() || typeof owner.pid !== 'number') return false;
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function tail(text: string, length = 4000): string {
  return text.length <= length ? text : `…${text.slice(-length)}`;
}
