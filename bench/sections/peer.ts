import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { capabilitiesOf, LanguageModel, SeededRandom, writeSafetensorsFile } from '@interleave/core';
import { type PreparedRun, prepareRun, writeModelWeights } from '@interleave/train';
import * as tf from '@tensorflow/tfjs';
import type { Job } from '../isolation/job.js';
import { failureCell, runIsolated } from '../isolation/run-isolated.js';
import type { BenchTable, Row } from '../report/table.js';
import type { HybridThroughput, Section, SectionContext } from '../section.js';
import { hybridParams, measureHybrid, type TrainRecord, toThroughput } from './train.js';

const run = promisify(execFile);
const PEER_SCRIPT = resolve(import.meta.dirname, '../peer/hybrid.py');
/** Long enough for a 1-thread peer step at the full shapes many times over. */
const PEER_TIMEOUT_MS = 30 * 60_000;

/**
 * The reference hybrid in plain PyTorch (bench/peer/hybrid.py), built from the same resolved
 * config, trained on the same shapes with the same number of threads; printed as a ratio to
 * Interleave's own tokens/s from this run. Before timing, the peer loads Interleave's weights of
 * a shrunk copy of the hybrid (strict state_dict) and must reproduce its logits: the two sides
 * are then the same model, not merely the same parameter count.
 */
export const peerSection: Section = {
  name: 'peer',
  async run(context: SectionContext): Promise<BenchTable[]> {
    const python = await findTorch(context);
    if ('skipped' in python) {
      const line = `PyTorch peer skipped: ${python.skipped}`;
      context.progress(line);
      return [skippedTable(line)];
    }
    const work = mkdtempSync(join(tmpdir(), 'interleave-peer-'));
    try {
      context.progress('peer: equivalence check (Interleave weights in the peer, shrunk hybrid)');
      const check = await equivalenceCheck(context, python.path, work);
      if (context.shared.hybrid === undefined) await measureHybrid(context);
      const ours = context.shared.hybrid;
      // The peer trains at the batch our side could run (see measureHybrid).
      const params = hybridParams(context, ours?.batchSize);
      const interleave: InterleaveRow[] = [
        { backend: context.backend.name, detail: context.backend.detail, ...(ours ? { throughput: ours } : {}) },
      ];
      for (const backend of context.options.backends.slice(1)) {
        context.progress(`peer: the reference hybrid on ${backend}, batch ${ours?.batchSize ?? '?'}`);
        const run = await runIsolated<TrainRecord>('train.model', params, backend);
        const record = run.records[0];
        interleave.push({
          backend,
          detail: backend,
          ...(record ? { throughput: toThroughput(record) } : {}),
          ...(run.failure ? { failure: run.failure } : {}),
        });
      }
      const prepared = await prepareRun(params.configFile, params.overrides);
      const specFile = join(work, 'spec.json');
      writeFileSync(specFile, JSON.stringify(peerSpec(prepared)));
      const peers: PeerRun[] = [];
      for (const variant of peerVariants(context)) {
        context.progress(`peer: PyTorch training, ${variant.describe}`);
        peers.push({ ...variant, ...(await peerTrain(python.path, specFile, variant.args, params.plan)) });
      }
      return [resultTable(context, prepared, interleave, peers, check, python.version)];
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  },
};

/** The reference hybrid trained by Interleave on one backend. */
interface InterleaveRow {
  readonly backend: string;
  readonly detail: string;
  readonly throughput?: Omit<HybridThroughput, 'batchSize'>;
  readonly failure?: string;
}

/** The threads each side computes with: tfjs-wasm's ops are single-threaded in Node. */
function threadsOf(backend: string, threads: number): string {
  const scan = `scan kernels ${scanKernelThreads(threads)}`;
  if (backend === 'wasm') return `tfjs 1 + ${scan}`;
  if (backend === 'tensorflow') return `TensorFlow ${threads} + ${scan}`;
  return `tfjs ? + ${scan}`;
}

/**
 * The hybrid's scans run on the calling thread (its Mamba scan as the WebAssembly SIMD kernel,
 * d_state 16) unless INTERLEAVE_SCAN_SIMD=off brings back the JavaScript kernel and its workers.
 */
function scanKernelThreads(threads: number): number {
  return process.env.INTERLEAVE_SCAN_SIMD === 'off' ? threads : 1;
}

interface PeerTrainResult {
  parameters: number;
  step_ms: number;
  tokens_per_second: number;
  tokens_per_step: number;
  peak_rss_bytes: number;
  /** With --device cuda: torch.cuda.max_memory_allocated. */
  peak_gpu_bytes?: number;
  torch: string;
  threads: number;
}

/** One way the peer is run: on the CPU at some threads, or on the GPU with one scan. */
interface PeerVariant {
  readonly threads: string;
  readonly scan: string;
  readonly device: 'cpu' | 'cuda';
  readonly args: readonly string[];
  readonly describe: string;
}
type PeerRun = PeerVariant & { result?: PeerTrainResult; failure?: string };

/**
 * Against webgpu, the peer runs on the GPU (CUDA, fp32, TF32 off) with both of its scans, and
 * the ratio that counts is against the faster; on the CPU backends it gets our thread count
 * (and, for reference, 1) with the loop scan.
 */
function peerVariants(context: SectionContext): PeerVariant[] {
  if (context.backend.name === 'webgpu') {
    return ['hillis-steele', 'sequential'].map((scan) => ({
      threads: 'GPU',
      scan,
      device: 'cuda' as const,
      args: ['--device', 'cuda', '--scan', scan, '--threads', '1'],
      describe: `GPU (cuda), ${scan} scan`,
    }));
  }
  return [...new Set([context.options.threads, 1])].map((threads) => ({
    threads: String(threads),
    scan: 'loop',
    device: 'cpu' as const,
    args: ['--threads', String(threads)],
    describe: `${threads} thread${threads === 1 ? '' : 's'}`,
  }));
}

interface PeerCheckResult {
  parameters: number;
  max_abs_logit_difference: number;
  max_abs_scan_difference: number;
}

type TorchLookup = { path: string; version: string } | { skipped: string };

/** --python, else the repo's .venv-torch (made by the slow tests), else python3 — whichever imports torch. */
async function findTorch(context: SectionContext): Promise<TorchLookup> {
  const repoRoot = resolve(import.meta.dirname, '../..');
  const venv = join(repoRoot, '.venv-torch/bin/python');
  const candidates = context.options.python
    ? [context.options.python]
    : [...(existsSync(venv) ? [venv] : []), 'python3'];
  const reasons: string[] = [];
  for (const candidate of candidates) {
    try {
      const { stdout } = await run(candidate, ['-c', 'import torch; print(torch.__version__)'], { timeout: 120_000 });
      return { path: candidate, version: stdout.trim() };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      reasons.push(
        `${candidate}: ${/No module named '?torch'?/.test(message) ? 'no torch module' : message.split('\n').at(-2) || message.split('\n')[0]}`,
      );
    }
  }
  return {
    skipped: `no Python with torch (${reasons.join('; ')}); install one (e.g. \`python3 -m venv .venv-torch && .venv-torch/bin/pip install torch\`) or pass --python`,
  };
}

/** The model and training settings the peer builds from: the resolved config, every default filled in. */
export function peerSpec(prepared: PreparedRun) {
  const { config } = prepared.loaded;
  const task = prepared.task.config as { seq_len?: number; num_kv_pairs?: number };
  if (task.seq_len === undefined) throw new Error('the peer needs a task with seq_len (e.g. mqar)');
  return {
    model: {
      vocab_size: config.model.vocab_size,
      d_model: config.model.d_model,
      tie_embeddings: config.model.tie_embeddings,
      norm_eps: config.model.norm_eps,
      layers: prepared.layers.map((layer) => ({ block: layer.block.name, config: layer.config, mlp: layer.mlp })),
    },
    seq_len: task.seq_len,
    num_kv_pairs: task.num_kv_pairs ?? 1,
    batch_size: config.train.batch_size,
    train: config.train,
    seed: config.seed,
  };
}

async function runPeer<Result>(python: string, args: string[]): Promise<{ result?: Result; failure?: string }> {
  try {
    const { stdout } = await run(python, [PEER_SCRIPT, ...args], {
      timeout: PEER_TIMEOUT_MS,
      maxBuffer: 16 << 20,
      // OpenMP's threads spin while they wait; on a machine whose cores are busy with other work
      // that made 2-thread steps 10× slower than 1-thread ones here. Passive waiting only helps the peer.
      env: { ...process.env, OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE' },
    });
    const line = stdout.trim().split('\n').at(-1) ?? '';
    return { result: JSON.parse(line) as Result };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { failure: message.trim().split('\n').at(-1) ?? message };
  }
}

function peerTrain(
  python: string,
  specFile: string,
  args: readonly string[],
  plan: { warmup: number; repeats: number },
) {
  return runPeer<PeerTrainResult>(python, [
    'train',
    '--spec',
    specFile,
    ...args,
    '--warmup',
    String(plan.warmup),
    '--repeats',
    String(plan.repeats),
  ]);
}

/** The hybrid's architecture at a size that checks in seconds, window shorter than the sequence. */
const CHECK_OVERRIDES = ['model.d_model=32', 'task.seq_len=48', 'task.num_kv_pairs=4', 'train.batch_size=2'];
const CHECK_WINDOW = 16;

interface ReferenceRecord {
  readonly weights: string;
  readonly data: string;
  readonly spec: string;
  readonly parameters: number;
}

async function equivalenceCheck(context: SectionContext, python: string, work: string) {
  const overrides = [...CHECK_OVERRIDES, ...windowOverrides(await prepareRun(context.options.config))];
  const reference = await runIsolated<ReferenceRecord>(
    'peer.reference',
    { configFile: context.options.config, overrides, directory: work },
    context.backend.name,
  );
  const record = reference.records[0];
  if (record === undefined) return { failure: reference.failure ?? 'no reference' };
  const checked = await runPeer<PeerCheckResult>(python, [
    'check',
    '--spec',
    record.spec,
    '--weights',
    record.weights,
    '--data',
    record.data,
  ]);
  return { ...checked, ourParameters: record.parameters };
}

/** Shrinks every windowed attention layer's window below the check's sequence length. */
function windowOverrides(prepared: PreparedRun): string[] {
  const overrides = new Set<string>();
  for (const layer of prepared.layers) {
    const config = layer.config as { window?: number | null };
    if (typeof config.window === 'number') {
      // Repeated layers share the path of the entry they came from, so each entry is set once.
      overrides.add(`${layer.path.join('.')}.window=${CHECK_WINDOW}`);
    }
  }
  return [...overrides];
}

/** Child side: builds the shrunk hybrid, writes its weights, some tokens and its logits. */
export const peerReferenceJob: Job<{ configFile: string; overrides: string[]; directory: string }> = async (
  params,
  emit,
) => {
  const prepared = await prepareRun(params.configFile, params.overrides);
  const { config } = prepared.loaded;
  const model = LanguageModel.build({
    container: prepared.container,
    config: config.model,
    layers: prepared.layers,
    rng: new SeededRandom(config.seed),
    backend: capabilitiesOf(tf.getBackend()),
  });
  const spec = peerSpec(prepared);
  const tokens = tf.tidy(() =>
    tf.randomUniform([2, spec.seq_len], 0, config.model.vocab_size, 'int32', 11),
  ) as tf.Tensor2D;
  const logits = model.forward(tokens);
  const files = {
    weights: join(params.directory, 'model.safetensors'),
    data: join(params.directory, 'data.safetensors'),
    spec: join(params.directory, 'check-spec.json'),
  };
  await writeModelWeights(files.weights, model);
  await writeSafetensorsFile(files.data, {
    tokens: { dtype: 'I32', shape: tokens.shape, data: (await tokens.data()) as Int32Array },
    logits: { dtype: 'F32', shape: logits.shape, data: (await logits.data()) as Float32Array },
  });
  writeFileSync(files.spec, JSON.stringify(spec));
  await emit({ ...files, parameters: model.parameters.count() } satisfies ReferenceRecord);
  tf.dispose([tokens, logits]);
  model.dispose();
};

function skippedTable(line: string): BenchTable {
  return {
    id: 'peer',
    title: 'Reference hybrid vs its PyTorch peer (training tokens/s)',
    columns: [{ key: 'status', header: 'status', kind: 'text' }],
    rows: [{ status: line }],
    notes: [],
  };
}

function resultTable(
  context: SectionContext,
  prepared: PreparedRun,
  interleave: readonly InterleaveRow[],
  peers: readonly PeerRun[],
  check: { result?: PeerCheckResult; failure?: string; ourParameters?: number },
  torchVersion: string,
): BenchTable {
  const ours = interleave[0]?.throughput;
  // One ratio column per peer run: its threads on the CPU, its scan on the GPU.
  const peerLabel = (peer: PeerRun) =>
    peer.device === 'cuda'
      ? `the GPU peer's ${peer.scan} scan`
      : `peer at ${peer.threads} thread${peer.threads === '1' ? '' : 's'}`;
  const ratioKey = (index: number) => `versusPeer${index}`;
  const rows: Row[] = [
    ...interleave.map(({ backend, detail, throughput, failure }) => ({
      implementation: `Interleave, tfjs ${detail}`,
      threads: threadsOf(backend, context.options.threads),
      parameters: throughput?.parameters ?? null,
      stepMs: throughput?.stepMs ?? failureCell(failure) ?? 'failed',
      tokensPerSecond: throughput?.tokensPerSecond ?? null,
      ...Object.fromEntries(
        peers.map(({ result }, index) => [
          ratioKey(index),
          result && throughput ? throughput.tokensPerSecond / result.tokens_per_second : null,
        ]),
      ),
      peakRssBytes: throughput?.peakRssBytes ?? null,
      peakGpuBytes: throughput?.peakGpuBytes ?? null,
    })),
    ...peers.map(({ threads, scan, device, result, failure }) => ({
      implementation: `PyTorch ${torchVersion} peer, eager, ${scan} scan${device === 'cuda' ? ', CUDA fp32 (TF32 off)' : ''}`,
      threads,
      parameters: result?.parameters ?? null,
      stepMs: result?.step_ms ?? (failure ? 'failed' : null),
      tokensPerSecond: result?.tokens_per_second ?? null,
      peakRssBytes: result?.peak_rss_bytes ?? null,
      peakGpuBytes: result?.peak_gpu_bytes ?? null,
    })),
  ];
  const onGpu = peers.some((peer) => peer.device === 'cuda');
  const fastest = peers
    .filter((peer) => peer.result)
    .sort((a, b) => (b.result?.tokens_per_second ?? 0) - (a.result?.tokens_per_second ?? 0))[0];
  const fastestLine =
    onGpu && fastest?.result && ours
      ? `Against the peer's faster scan on the GPU (${fastest.scan}, ${Math.round(fastest.result.tokens_per_second).toLocaleString('en-US')} tokens/s): Interleave is ${(ours.tokensPerSecond / fastest.result.tokens_per_second).toFixed(2)}×.`
      : undefined;
  const peerParameters = peers.find((peer) => peer.result)?.result?.parameters;
  const parameterLine =
    ours && peerParameters !== undefined
      ? peerParameters === ours.parameters
        ? `Parameters match: ${ours.parameters.toLocaleString('en-US')} on both sides.`
        : `PARAMETER COUNTS DIFFER: Interleave ${ours.parameters}, peer ${peerParameters} — the ratio compares different models.`
      : 'Parameter counts could not be compared (a side failed).';
  const checkLine = check.result
    ? `Same model: the peer loaded Interleave's weights of the hybrid shrunk to d_model 32, L 48, window ${CHECK_WINDOW} (strict state_dict, ${check.result.parameters.toLocaleString('en-US')} parameters${check.ourParameters === check.result.parameters ? ', as ours' : `, ours ${check.ourParameters}`}) and reproduced its logits to max |Δ| = ${check.result.max_abs_logit_difference.toExponential(1)} (loop vs parallel scan: ${check.result.max_abs_scan_difference.toExponential(1)}).`
    : `EQUIVALENCE CHECK FAILED: ${check.failure}.`;
  const { config } = prepared.loaded;
  const task = prepared.task.config as { seq_len?: number };
  return {
    id: 'peer',
    title: 'Reference hybrid vs its PyTorch peer (training tokens/s)',
    columns: [
      { key: 'implementation', header: 'implementation', kind: 'text' },
      { key: 'threads', header: 'threads', kind: 'text' },
      { key: 'parameters', header: 'parameters', kind: 'int' },
      { key: 'stepMs', header: 'step ms', kind: 'ms' },
      { key: 'tokensPerSecond', header: 'tokens/s', kind: 'rate' },
      ...peers.map((peer, index) => ({
        key: ratioKey(index),
        header: `÷ ${peerLabel(peer)} × (tokens/s)`,
        kind: 'ratio' as const,
      })),
      { key: 'peakRssBytes', header: 'peak RSS MiB', kind: 'mib' },
      ...(onGpu ? [{ key: 'peakGpuBytes', header: 'peak GPU MiB', kind: 'mib' as const }] : []),
    ],
    rows,
    notes: [
      `Both train the reference hybrid (${prepared.layers.length} layers, d_model ${config.model.d_model}, vocabulary ${config.model.vocab_size}) on batch ${config.train.batch_size} × ${task.seq_len} tokens: forward, masked cross-entropy, backward, global-norm clipping, AdamW, loss read back; median step over ${hybridParams(context).plan.repeats} steps after ${hybridParams(context).plan.warmup} warm-up steps. The peer draws random MQAR-shaped batches (compute does not depend on the tokens).`,
      `The peer: bench/peer/hybrid.py — nn.Linear/Conv1d/RMSNorm, F.scaled_dot_product_attention with the window as a boolean mask, the selective scan ${onGpu ? 'as a Hillis–Steele scan and as a loop over time (one row each)' : "as a loop over time (as mamba's selective_scan_ref)"}, torch.optim.AdamW with default settings.`,
      ...(fastestLine ? [fastestLine] : []),
      onGpu
        ? 'On the GPU: Interleave on webgpu (Dawn, Vulkan); the peer on CUDA in float32 with TF32 off. Peak GPU memory: the GPU buffers Interleave held (tfjs pools included), torch.cuda.max_memory_allocated for the peer.'
        : `Threads: tfjs-wasm runs its ops on 1 thread in Node; TensorFlow runs its ops on ${context.options.threads} (TF_NUM_INTRAOP_THREADS); the scan kernels use ${scanKernelThreads(context.options.threads)} (the Mamba scan's WebAssembly SIMD kernel runs on the calling thread; with INTERLEAVE_SCAN_SIMD=off its JavaScript kernel uses INTERLEAVE_KERNEL_THREADS). The peer gets torch.set_num_threads(${context.options.threads})${context.options.threads > 1 ? ', and for reference 1' : ''}, with OMP_WAIT_POLICY=${process.env.OMP_WAIT_POLICY ?? 'PASSIVE'}.`,
      parameterLine,
      checkLine,
      ...interleave.filter((row) => row.failure).map((row) => `Interleave on ${row.backend} failed: ${row.failure}.`),
      ...peers.filter((peer) => peer.failure).map((peer) => `Peer (${peer.describe}) failed: ${peer.failure}.`),
    ],
  };
}
