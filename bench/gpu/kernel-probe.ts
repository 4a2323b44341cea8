import { writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import {
  capabilitiesOf,
  configureWebgpuMatmul,
  LanguageModel,
  MATMUL_TILINGS,
  recordWebgpuStep,
  SeededRandom,
  selectBackend,
  webgpuMatmulCounts,
} from '@interleave/core';
import { batchWorkerFor, prepareRun, Trainer } from '@interleave/train';
import * as tf from '@tensorflow/tfjs';
import { type AttentionPath, causalAttention } from '../../packages/blocks/src/ops/banded-attention.js';
import { linearRecurrence } from '../../packages/blocks/src/scan/linear-recurrence.js';
import { type ScanImplementation, selectiveScan } from '../../packages/blocks/src/scan/selective-scan.js';

/**
 * GPU figures for docs/gpu.md ("Speed: kernels and per-op cost"), one JSON line per figure:
 *   node kernel-probe.mjs [tinyop] [dawncalls] [matmul[:kernel,...]] [use-matmul:<tfjs|auto|tiling>]
 *                         [scan] [scan-kernels] [recurrence] [swa] [hybrid[:batch[:seq_len]]]
 *                         [step:<config>[:key=value,...]] [replay:<config>[:...]] [dispatches:<config>[:...]] ...
 * `flags:NAME=value,...` sets tfjs environment flags for the phases after it (e.g.
 * `flags:WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE=1000`), so flag A/Bs run in one process.
 * `step:` trains a few steps of any config (overrides as in `--set`; INTERLEAVE_PROBE_STEPS timed
 * steps, default 8) and reports the time per step, the kernels one step runs (tf.profile: count and summed kernel ms per kernel name) and
 * where the step's wall time goes. `dispatches:` times each dispatch of the replayed step (summed
 * by pipeline label; INTERLEAVE_PROBE_REPEATS runs of each, default 20).
 * Runs on whatever `INTERLEAVE_BACKEND` names (webgpu on the GPU machine). Times are wall-clock
 * around work that ends in a read-back, so GPU execution is included.
 */

interface PoolCounters {
  numBytesUsed: number;
  numBytesAllocated: number;
}
interface BufferManagerLike extends PoolCounters {
  acquireBuffer: (...args: unknown[]) => unknown;
}

let peakAllocated = 0;
let peakUsed = 0;

/** Runs `step` `times` times back to back and reads one scalar at the end: ms per run. */
async function timeOnGpu(times: number, step: () => tf.Tensor[]): Promise<number> {
  const start = performance.now();
  const sums: tf.Tensor[] = [];
  for (let i = 0; i < times; i++) {
    const outputs = step();
    sums.push(tf.tidy(() => tf.addN(outputs.map((t) => t.sum()))));
    tf.dispose(outputs);
  }
  const total = tf.tidy(() => sums.reduce((sum: tf.Tensor, part) => sum.add(part), tf.scalar(0)));
  await total.data();
  tf.dispose([...sums, total]);
  return (performance.now() - start) / times;
}

/** Tracks the peak of tfjs-webgpu's allocated and in-use buffer bytes. */
function trackPeakMemory(): void {
  const manager = (tf.backend() as unknown as { bufferManager?: BufferManagerLike }).bufferManager;
  if (manager === undefined) return;
  const acquire = manager.acquireBuffer.bind(manager);
  manager.acquireBuffer = (...args: unknown[]) => {
    const buffer = acquire(...args);
    peakAllocated = Math.max(peakAllocated, manager.numBytesAllocated);
    peakUsed = Math.max(peakUsed, manager.numBytesUsed);
    return buffer;
  };
}

function resetPeaks(): void {
  const manager = (tf.backend() as unknown as { bufferManager?: PoolCounters }).bufferManager;
  peakAllocated = manager?.numBytesAllocated ?? 0;
  peakUsed = manager?.numBytesUsed ?? 0;
}

function report(figure: string, values: Record<string, unknown>): void {
  console.log(JSON.stringify({ figure, ...values }));
}

const GiB = 2 ** 30;

async function tinyOps(): Promise<void> {
  const configured = tf.env().getNumber('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE');
  for (const batchSize of [configured, 100000]) {
    tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', batchSize);
    const base = tf.randomUniform([1024]);
    for (let round = 0; round < 4; round++) {
      const start = performance.now();
      let x = base.clone();
      for (let i = 0; i < 500; i++) {
        const next = tf.add(x, base);
        x.dispose();
        x = next;
      }
      const recorded = performance.now();
      await x.data();
      const done = performance.now();
      x.dispose();
      if (round > 0) {
        report('tiny op (chain of 500 adds on 1024 floats)', {
          submitBatch: batchSize,
          usPerOpTotal: ((done - start) * 1000) / 500,
          usPerOpRecording: ((recorded - start) * 1000) / 500,
        });
      }
    }
    base.dispose();
  }
  tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', configured);
  await replayedTinyOps();
}

/** The same chain recorded once and replayed (core's webgpu-step-replay.ts): Dawn's cost per dispatch. */
async function replayedTinyOps(): Promise<void> {
  const base = tf.randomUniform([1024]);
  const chain = () => {
    let x = tf.add(base, 0);
    for (let i = 1; i < 500; i++) {
      const next = tf.add(x, base);
      x.dispose();
      x = next;
    }
    return { value: undefined, output: x };
  };
  let output: tf.Tensor | undefined;
  const { plan, refusal } = recordWebgpuStep({ inputs: [], state: [] }, () => {
    const result = chain();
    output = result.output;
    return result;
  });
  if (plan === undefined) {
    report('tiny op replayed', { refusal });
  } else {
    for (let round = 0; round < 5; round++) {
      const start = performance.now();
      await plan.replay([]);
      const done = performance.now();
      if (round > 0) {
        report('tiny op replayed (the chain of 500 adds recorded once)', {
          dispatches: plan.dispatchCount,
          usPerOpTotal: ((done - start) * 1000) / plan.dispatchCount,
        });
      }
    }
    plan.dispose();
  }
  output?.dispose();
  base.dispose();
}

/**
 * What Dawn's Node binding charges per call, on tfjs's device: the floor under any per-op cost
 * built from these calls (a recorded-and-replayed step would still pay setPipeline,
 * setBindGroup and dispatchWorkgroups per dispatch).
 */
async function dawnCalls(): Promise<void> {
  const device = (tf.backend() as unknown as { device: GPUDevice }).device;
  const code = `@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(0) @binding(1) var<storage, read> inp: array<f32>;
struct Dims { n: u32 };
@group(0) @binding(2) var<uniform> dims: Dims;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  if (id.x < dims.n) { out[id.x] = inp[id.x] + 1.0; }
}`;
  const pipeline = device.createComputePipeline({
    layout: 'auto',
    compute: { module: device.createShaderModule({ code }), entryPoint: 'main' },
  });
  const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const a = device.createBuffer({ size: 4096, usage: storage });
  const b = device.createBuffer({ size: 4096, usage: storage });
  const uniform = device.createBuffer({ size: 256, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  const words = new Uint32Array([1024, 0, 0, 0]);
  device.queue.writeBuffer(uniform, 0, words);
  const layout = pipeline.getBindGroupLayout(0);
  const entries = [
    { binding: 0, resource: { buffer: a } },
    { binding: 1, resource: { buffer: b } },
    { binding: 2, resource: { buffer: uniform, offset: 0, size: 16 } },
  ];
  const bindGroup = device.createBindGroup({ layout, entries });
  const n = 5000;
  const time = (what: string, body: () => void) => {
    const start = performance.now();
    for (let i = 0; i < n; i++) body();
    report('dawn call', { what, usPerCall: ((performance.now() - start) * 1000) / n });
  };
  for (let round = 0; round < 2; round++) {
    time('getBindGroupLayout(0)', () => pipeline.getBindGroupLayout(0));
    time('createBindGroup (3 entries)', () => device.createBindGroup({ layout, entries }));
    time('queue.writeBuffer 16 bytes', () => device.queue.writeBuffer(uniform, 0, words));
    time('createBuffer 4 KiB + destroy', () => device.createBuffer({ size: 4096, usage: storage }).destroy());
    time('createBuffer 4 KiB mapped + unmap + destroy', () => {
      const buffer = device.createBuffer({
        size: 4096,
        usage: GPUBufferUsage.MAP_WRITE | GPUBufferUsage.COPY_SRC,
        mappedAtCreation: true,
      });
      buffer.getMappedRange();
      buffer.unmap();
      buffer.destroy();
    });
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    time('setPipeline + setBindGroup + dispatchWorkgroups', () => {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(16);
    });
    pass.end();
    device.queue.submit([encoder.finish()]);
    time('createCommandEncoder + pass + finish + submit (empty)', () => {
      const e = device.createCommandEncoder();
      e.beginComputePass().end();
      device.queue.submit([e.finish()]);
    });
    await device.queue.onSubmittedWorkDone();
  }
  for (const buffer of [a, b, uniform]) buffer.destroy();
}

interface MatmulCase {
  /** What the product is in the reference hybrid at B16 × L1024 (16,384 rows, d_model 256, vocab 8192). */
  what: string;
  m: number;
  k: number;
  n: number;
  transposeA?: boolean;
  transposeB?: boolean;
}

const MATMUL_CASES: MatmulCase[] = [
  { what: 'square 4096²', m: 4096, k: 4096, n: 4096 },
  { what: 'tied head: hidden · embeddingᵀ', m: 16384, k: 256, n: 8192 },
  { what: 'tied head dX: dlogits · embedding', m: 16384, k: 8192, n: 256 },
  { what: 'tied head dX as tfjs’s gradient (transposeB)', m: 16384, k: 8192, n: 256, transposeB: true },
  { what: 'tied head dW: hiddenᵀ · dlogits', m: 256, k: 16384, n: 8192 },
  { what: 'tied head dW as tfjs’s gradient (transposeA)', m: 256, k: 16384, n: 8192, transposeA: true },
  { what: 'MLP up / Mamba in_proj', m: 16384, k: 256, n: 1024 },
  { what: 'MLP down', m: 16384, k: 1024, n: 256 },
  { what: 'MLP up dW: xᵀ · dy', m: 256, k: 16384, n: 1024 },
];

/**
 * `matmul[:kernel,kernel,...]`: TFLOP/s of each product in MATMUL_CASES for tfjs's kernel and
 * each of Interleave's tilings (all of MATMUL_TILINGS unless named), one line per (product,
 * kernel; `interleave`: the tiling picked by shape; `<tiling>-nosplit` without splitting K): the median of 3 timed rounds of 10 products after a warm-up round, each round ending
 * in one scalar read-back; and the largest |Δ| against tfjs's product.
 */
async function matmul(kernels: string[]): Promise<void> {
  const choices =
    kernels.length > 0
      ? kernels
      : ['tfjs', 'interleave', ...MATMUL_TILINGS.map((t) => t.name), `${MATMUL_TILINGS[0]?.name}-nosplit`];
  const limits = (tf.backend() as unknown as { device: GPUDevice }).device.limits;
  report('matmul device limits', {
    maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
  });
  for (const { what, m, k, n, transposeA = false, transposeB = false } of MATMUL_CASES) {
    const a = tf.randomNormal(transposeA ? [k, m] : [m, k]);
    const b = tf.randomNormal(transposeB ? [n, k] : [k, n]);
    configureWebgpuMatmul({ kernel: 'tfjs' });
    const reference = tf.matMul(a, b, transposeA, transposeB);
    for (const choice of choices) {
      // interleave: ours with the tiling it picks by shape; <tiling>-nosplit: the tiling without splitting K.
      const tiling = choice.replace(/-nosplit$/, '');
      if (choice === 'tfjs' || choice === 'interleave') configureWebgpuMatmul({ kernel: choice });
      else configureWebgpuMatmul({ kernel: 'interleave', tiling, splitK: tiling === choice });
      const before = { ...webgpuMatmulCounts };
      const rounds: number[] = [];
      for (let round = 0; round < 4; round++) {
        const start = performance.now();
        const products: tf.Tensor[] = [];
        for (let i = 0; i < 10; i++) products.push(tf.matMul(a, b, transposeA, transposeB));
        // One scalar read-back at the end: the products stay on the GPU.
        // (tfjs-webgpu's addN of more than 7 tensors binds more storage buffers than a device allows by default.)
        const probe = tf.tidy(() =>
          products.reduce((sum: tf.Tensor, p) => sum.add(p.slice([0, 0], [1, 1])), tf.zeros([1, 1])),
        );
        await probe.data();
        const seconds = (performance.now() - start) / 1000;
        tf.dispose([...products, probe]);
        if (round > 0) rounds.push((10 * 2 * m * n * k) / seconds / 1e12);
      }
      const ran =
        choice === 'tfjs' ? 'tfjs' : webgpuMatmulCounts.interleave > before.interleave ? choice : 'tfjs (fallback)';
      const splitK = webgpuMatmulCounts.splitK > before.splitK;
      const difference = tf.tidy(() => tf.matMul(a, b, transposeA, transposeB).sub(reference).abs().max());
      const maxAbsDiffVsTfjs = (await difference.data())[0];
      difference.dispose();
      const sorted = [...rounds].sort((x, y) => x - y);
      report('matmul fp32', {
        what,
        mkn: [m, k, n],
        transposeA,
        transposeB,
        kernel: ran,
        splitK,
        tflops: sorted[1],
        rounds: rounds.map((r) => Math.round(r * 100) / 100),
        maxAbsDiffVsTfjs,
      });
    }
    tf.dispose([a, b, reference]);
  }
  configureWebgpuMatmul();
}

async function scan(): Promise<void> {
  const [batch, length, dInner, dState] = [16, 1024, 512, 16];
  const x = tf.randomNormal([batch, length, dInner]) as tf.Tensor3D;
  const dt = tf.randomUniform([batch, length, dInner], 0.001, 0.1) as tf.Tensor3D;
  const a = tf.neg(tf.randomUniform([dInner, dState], 0.5, 4)) as tf.Tensor2D;
  const b = tf.randomNormal([batch, length, dState]) as tf.Tensor3D;
  const c = tf.randomNormal([batch, length, dState]) as tf.Tensor3D;
  for (const implementation of ['fused', 'ops'] as ScanImplementation[]) {
    resetPeaks();
    for (let round = 0; round < 3; round++) {
      const ms = await timeOnGpu(5, () =>
        tf.tidy(() => {
          const run = (...t: tf.Tensor[]) =>
            selectiveScan({ x: t[0], dt: t[1], a: t[2], b: t[3], c: t[4] } as never, implementation).sum();
          const { value, grads } = tf.valueAndGrads(run)([x, dt, a, b, c]);
          return [value, ...grads];
        }),
      );
      if (round > 0) {
        report('selective scan fwd+bwd B16 L1024 d_inner 512 d_state 16', {
          implementation,
          ms,
          peakAllocatedGiB: peakAllocated / GiB,
          peakUsedGiB: peakUsed / GiB,
        });
      }
    }
  }
  tf.dispose([x, dt, a, b, c]);
}

/**
 * Runs `step` `times` times back to back and reads back one element of its last output: ms per
 * run. Unlike `timeOnGpu` it sums nothing: tfjs-webgpu reduces a whole tensor to a scalar in a
 * single workgroup, several ms for a 32 MiB tensor on the H200, which would swamp a fast kernel.
 * The GPU's queue runs in order, so the read-back waits for every run.
 */
async function timeWithoutSums(times: number, step: () => tf.Tensor[]): Promise<number> {
  const start = performance.now();
  let last: tf.Tensor[] = [];
  for (let i = 0; i < times; i++) {
    tf.dispose(last);
    last = step();
  }
  const probe = tf.tidy(() => {
    const output = last[last.length - 1] as tf.Tensor;
    return output.reshape([-1]).slice(0, 1);
  });
  await probe.data();
  tf.dispose([...last, probe]);
  return (performance.now() - start) / times;
}

/**
 * The selective scan's two WGSL kernels (INTERLEAVE_SCAN_KERNEL=lanes|channels) at the `scan`
 * phase's shape, timed without the `scan` phase's tfjs sums: the forward kernel and the gradient
 * kernel each alone through tfjs's kernel registry, and forward + backward through
 * `selectiveScan` and its custom gradient with a given dy.
 */
async function scanKernels(): Promise<void> {
  const [batch, length, dInner, dState] = [16, 1024, 512, 16];
  const x = tf.randomNormal([batch, length, dInner]);
  const dt = tf.randomUniform([batch, length, dInner], 0.001, 0.1);
  const a = tf.tidy(() => tf.neg(tf.randomUniform([dInner, dState], 0.5, 4)));
  const b = tf.randomNormal([batch, length, dState]);
  const c = tf.randomNormal([batch, length, dState]);
  const dy = tf.randomNormal([batch, length, dInner]) as tf.Tensor3D;
  const before = process.env.INTERLEAVE_SCAN_KERNEL;
  for (const kernel of ['lanes', 'channels']) {
    process.env.INTERLEAVE_SCAN_KERNEL = kernel;
    for (let round = 0; round < 3; round++) {
      const forwardMs = await timeWithoutSums(10, () => [
        tf.engine().runKernel('InterleaveSelectiveScan', { x, dt, a, b, c }) as tf.Tensor,
      ]);
      const gradientMs = await timeWithoutSums(
        10,
        () => tf.engine().runKernel('InterleaveSelectiveScanGrad', { x, dt, a, b, c, dy }) as tf.Tensor[],
      );
      const forwardBackwardMs = await timeWithoutSums(10, () =>
        tf.tidy(() => {
          const run = (...t: tf.Tensor[]) =>
            selectiveScan({ x: t[0], dt: t[1], a: t[2], b: t[3], c: t[4] } as never, 'fused');
          const { value, grads } = tf.valueAndGrads(run)([x, dt, a, b, c], dy);
          return [value, ...grads];
        }),
      );
      if (round > 0) {
        report('selective scan kernels B16 L1024 d_inner 512 d_state 16 (no sums)', {
          kernel,
          forwardMs,
          gradientMs,
          forwardBackwardMs,
        });
      }
    }
  }
  if (before === undefined) delete process.env.INTERLEAVE_SCAN_KERNEL;
  else process.env.INTERLEAVE_SCAN_KERNEL = before;
  tf.dispose([x, dt, a, b, c, dy]);
}

async function recurrence(): Promise<void> {
  const shape: [number, number, number] = [16, 1024, 8192];
  const a = tf.randomUniform(shape, 0.5, 1) as tf.Tensor3D;
  const input = tf.randomNormal(shape) as tf.Tensor3D;
  for (const implementation of ['fused', 'ops'] as const) {
    for (let round = 0; round < 3; round++) {
      const ms = await timeOnGpu(5, () =>
        tf.tidy(() => {
          const { value, grads } = tf.valueAndGrads((p: tf.Tensor, q: tf.Tensor) =>
            linearRecurrence(p as tf.Tensor3D, q as tf.Tensor3D, implementation).sum(),
          )([a, input]);
          return [value, ...grads];
        }),
      );
      if (round > 0) report('linear recurrence fwd+bwd [16, 1024, 8192]', { implementation, ms });
    }
  }
  tf.dispose([a, input]);
}

/**
 * Sliding-window attention core (after projections and RoPE) forward + backward: the fused WGSL
 * kernels against the tf-op banded form (the dense form where w ≥ L, which is what `banded` runs
 * there), at the reference hybrid's attention shape and at Zoology's MQAR attention shape.
 */
async function slidingWindowAttention(): Promise<void> {
  const shapes = [
    { batch: 16, heads: 4, length: 1024, headDim: 64, window: 128 as number | null },
    { batch: 512, heads: 1, length: 64, headDim: 64, window: 64 },
    { batch: 512, heads: 1, length: 64, headDim: 64, window: null },
  ];
  for (const { batch, heads, length, headDim, window } of shapes) {
    const queries = tf.randomNormal([batch, heads, length, headDim], 0, 1 / Math.sqrt(headDim)) as tf.Tensor4D;
    const keys = tf.randomNormal([batch, heads, length, headDim]) as tf.Tensor4D;
    const values = tf.randomNormal([batch, heads, length, headDim]) as tf.Tensor4D;
    for (const path of ['fused', 'banded'] as AttentionPath[]) {
      resetPeaks();
      for (let round = 0; round < 4; round++) {
        const ms = await timeOnGpu(10, () =>
          tf.tidy(() => {
            const { value, grads } = tf.valueAndGrads((q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) =>
              causalAttention(
                { queries: q as tf.Tensor4D, keys: k as tf.Tensor4D, values: v as tf.Tensor4D },
                window,
                path,
              ).sum(),
            )([queries, keys, values]);
            return [value, ...grads];
          }),
        );
        if (round > 0) {
          report('attention core fwd+bwd', {
            implementation: path === 'fused' ? 'fused' : 'ops',
            batch,
            heads,
            seqLen: length,
            headDim,
            window: window ?? 'full',
            ms,
            peakAllocatedGiB: peakAllocated / GiB,
            peakUsedGiB: peakUsed / GiB,
          });
        }
      }
    }
    tf.dispose([queries, keys, values]);
  }
}

async function hybrid(batch: number, length?: number): Promise<void> {
  const { loaded, container, layers, task } = await prepareRun('configs/bench-hybrid.yaml', [
    `train.batch_size=${batch}`,
    ...(length === undefined ? [] : [`task.seq_len=${length}`]),
  ]);
  const { config } = loaded;
  const model = LanguageModel.build({
    container,
    config: config.model,
    layers,
    rng: new SeededRandom(config.seed),
    backend: capabilitiesOf(tf.getBackend()),
  });
  const taskInstance = task.definition.create(task.config, { vocabSize: config.model.vocab_size, seed: config.seed });
  const trainer = new Trainer(model, taskInstance, config.train);
  resetPeaks();
  for (let step = 0; step < (length === undefined ? 6 : 3); step++) {
    const start = performance.now();
    const metrics = await trainer.trainStep();
    const ms = performance.now() - start;
    report('reference hybrid training step', {
      batch,
      seqLen: config.task.seq_len,
      step,
      ms,
      tokensPerSecond: metrics.tokens / (ms / 1000),
      loss: metrics.loss,
      peakAllocatedGiB: peakAllocated / GiB,
      peakUsedGiB: peakUsed / GiB,
      stepReplay: trainer.stepReplayStatus,
    });
  }
  trainer.dispose();
  model.dispose();
}

/**
 * Where a replayed step's time goes: the CPU time to issue it (writes, encoding, submits), the
 * time per step when replays are issued back to back with one read-back at the end (the GPU's
 * time), and when each replay waits for its own read-back (what the trainer does).
 */
async function replayTimes(configFile: string, overrides: string[]): Promise<void> {
  const { loaded, container, layers, task } = await prepareRun(configFile, overrides);
  const { config } = loaded;
  const model = LanguageModel.build({
    container,
    config: config.model,
    layers,
    rng: new SeededRandom(config.seed),
    backend: capabilitiesOf(tf.getBackend()),
  });
  const taskInstance = task.definition.create(task.config, { vocabSize: config.model.vocab_size, seed: config.seed });
  const trainer = new Trainer(model, taskInstance, config.train);
  for (let step = 0; step < 4; step++) await trainer.trainStep();
  const plan = trainer.recordedStep;
  if (plan === undefined) {
    report('replay times', { config: configFile, stepReplay: trainer.stepReplayStatus });
  } else {
    const batch = taskInstance.trainBatch(4, config.train.batch_size);
    const inputs = [...trainer.stepInputArrays(batch), trainer.optimizer.stepScalars(1e-5, 5)].slice(
      0,
      plan.inputCount,
    );
    const issue: number[] = [];
    const awaited: number[] = [];
    for (let i = 0; i < 10; i++) {
      const start = performance.now();
      const reading = plan.replay(inputs);
      issue.push(performance.now() - start);
      await reading;
      awaited.push(performance.now() - start);
    }
    const pipelinedStart = performance.now();
    for (let i = 0; i < 19; i++) await plan.replay(inputs, false);
    await plan.replay(inputs);
    const pipelinedMs = (performance.now() - pipelinedStart) / 20;
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
    report('replay times', {
      config: configFile,
      overrides,
      dispatches: plan.dispatchCount,
      submits: plan.submitCount,
      issueMs: median(issue),
      awaitedMs: median(awaited),
      pipelinedMs,
    });
  }
  trainer.dispose();
  model.dispose();
}

/**
 * Where a replayed step's GPU time goes, dispatch by dispatch (`RecordedStep.timeDispatches`: each
 * dispatch repeated back to back, no timestamp queries needed), summed by pipeline label, beside
 * the pipelined time of the whole step.
 */
async function dispatchTimes(configFile: string, overrides: string[]): Promise<void> {
  const { loaded, container, layers, task } = await prepareRun(configFile, overrides);
  const { config } = loaded;
  const model = LanguageModel.build({
    container,
    config: config.model,
    layers,
    rng: new SeededRandom(config.seed),
    backend: capabilitiesOf(tf.getBackend()),
  });
  const taskInstance = task.definition.create(task.config, { vocabSize: config.model.vocab_size, seed: config.seed });
  const trainer = new Trainer(model, taskInstance, config.train);
  for (let step = 0; step < 4; step++) await trainer.trainStep();
  const plan = trainer.recordedStep;
  if (plan === undefined) {
    report('dispatch times', { config: configFile, stepReplay: trainer.stepReplayStatus });
  } else {
    const batch = taskInstance.trainBatch(4, config.train.batch_size);
    const inputs = [...trainer.stepInputArrays(batch), trainer.optimizer.stepScalars(1e-5, 5)].slice(
      0,
      plan.inputCount,
    );
    const pipelinedStart = performance.now();
    for (let i = 0; i < 9; i++) await plan.replay(inputs, false);
    await plan.replay(inputs);
    const pipelinedMs = (performance.now() - pipelinedStart) / 10;
    const times = await plan.timeDispatches(Number(process.env.INTERLEAVE_PROBE_REPEATS ?? 20));
    const byLabel = new Map<string, { count: number; ms: number }>();
    for (const time of times) {
      const entry = byLabel.get(time.label) ?? { count: 0, ms: 0 };
      entry.count += 1;
      entry.ms += time.ms;
      byLabel.set(time.label, entry);
    }
    const slowest = [...times].sort((a, b) => b.ms - a.ms).slice(0, 24);
    // INTERLEAVE_PROBE_DUMP=<folder>: every dispatch's time, in order, for reading beside the step's program.
    const dumpFolder = process.env.INTERLEAVE_PROBE_DUMP;
    if (dumpFolder !== undefined) {
      const name = `${basename(configFile, '.yaml')}${overrides.length > 0 ? `-${overrides.join(',')}` : ''}.tsv`;
      writeFileSync(
        join(dumpFolder, name.replace(/[^A-Za-z0-9._-]/g, '_')),
        times
          .map((time) => `${time.index}\t${time.label}\t${time.workgroups.join(',')}\t${time.ms.toFixed(4)}`)
          .join('\n'),
      );
    }
    report('dispatch times', {
      config: configFile,
      overrides,
      dispatches: times.length,
      pipelinedMs,
      sumOfDispatchesMs: times.reduce((sum, time) => sum + time.ms, 0),
      byLabel: [...byLabel.entries()]
        .sort((a, b) => b[1].ms - a[1].ms)
        .map(([label, { count, ms }]) => `${label}×${count}:${ms.toFixed(3)}ms`),
      slowest: slowest.map(
        (time) => `#${time.index} ${time.label} [${time.workgroups.join(',')}]:${time.ms.toFixed(3)}ms`,
      ),
    });
  }
  trainer.dispose();
  model.dispose();
}

/** A few training steps of `configFile`, then one step under tf.profile: what one step runs. */
async function profileStep(configFile: string, overrides: string[]): Promise<void> {
  const { loaded, container, layers, task } = await prepareRun(configFile, overrides);
  const { config } = loaded;
  const model = LanguageModel.build({
    container,
    config: config.model,
    layers,
    rng: new SeededRandom(config.seed),
    backend: capabilitiesOf(tf.getBackend()),
  });
  const taskInstance = task.definition.create(task.config, { vocabSize: config.model.vocab_size, seed: config.seed });
  const trainer = new Trainer(model, taskInstance, config.train, {
    batchWorker: batchWorkerFor(loaded, tf.getBackend()),
  });
  resetPeaks();
  const times: number[] = [];
  let tokens = 0;
  const steps = Math.max(5, Number(process.env.INTERLEAVE_PROBE_STEPS ?? 8));
  for (let step = 0; step < steps; step++) {
    const start = performance.now();
    const metrics = await trainer.trainStep();
    times.push(performance.now() - start);
    tokens = metrics.tokens;
  }
  const warm = times.slice(3).sort((a, b) => a - b);
  const medianMs = warm[Math.floor(warm.length / 2)] ?? Number.NaN;
  report('training step', {
    config: configFile,
    overrides,
    stepMs: times.map((ms) => Math.round(ms * 10) / 10),
    medianMs,
    tokensPerSecond: tokens / (medianMs / 1000),
    peakAllocatedGiB: peakAllocated / GiB,
    peakUsedGiB: peakUsed / GiB,
    // A replayed step runs no tfjs kernels: the profile below lists them only with step_replay off.
    stepReplay: trainer.stepReplayStatus,
    batches: trainer.batchStatus,
  });
  const profileStart = performance.now();
  const info = await tf.profile(async () => {
    await trainer.trainStep();
  });
  const profiledMs = performance.now() - profileStart;
  const byName = new Map<string, { count: number; kernelMs: number }>();
  for (const kernel of info.kernels) {
    const entry = byName.get(kernel.name) ?? { count: 0, kernelMs: 0 };
    entry.count += 1;
    const ms = await kernel.kernelTimeMs;
    entry.kernelMs += typeof ms === 'number' ? ms : 0;
    byName.set(kernel.name, entry);
  }
  const kernels = [...byName.entries()]
    .sort((a, b) => b[1].kernelMs - a[1].kernelMs || b[1].count - a[1].count)
    .map(([name, { count, kernelMs }]) => `${name}×${count}:${kernelMs.toFixed(2)}ms`);
  report('step kernels', {
    config: configFile,
    kernelCount: info.kernels.length,
    profiledMs,
    newTensors: info.newTensors,
    peakBytes: info.peakBytes,
    kernels,
  });
  trainer.dispose();
  model.dispose();
}

function setFlags(list: string): void {
  for (const pair of list.split(',')) {
    const [name, value] = pair.split('=');
    if (name === undefined || value === undefined) throw new Error(`flags: expected NAME=value, got '${pair}'`);
    const parsed = value === 'true' ? true : value === 'false' ? false : Number(value);
    tf.env().set(name, parsed);
    report('flag', { name, value: tf.env().get(name) });
  }
}

async function main(): Promise<void> {
  const choice = await selectBackend(process.env.INTERLEAVE_BACKEND === 'auto' ? 'auto' : 'webgpu');
  report('backend', { name: choice.name, detail: choice.detail, skipped: choice.skipped });
  trackPeakMemory();
  for (const phase of process.argv.slice(2)) {
    const started = performance.now();
    try {
      if (phase === 'tinyop') await tinyOps();
      else if (phase === 'dawncalls') await dawnCalls();
      else if (phase === 'matmul' || phase.startsWith('matmul:'))
        await matmul(phase.split(':')[1]?.split(',').filter(Boolean) ?? []);
      else if (phase.startsWith('use-matmul:')) {
        // Sets the matmul kernel for the phases after it: use-matmul:tfjs, use-matmul:<tiling>, use-matmul:auto.
        const choice = phase.slice('use-matmul:'.length);
        configureWebgpuMatmul(choice === 'tfjs' || choice === 'auto' ? { kernel: choice } : { tiling: choice });
      } else if (phase === 'scan') await scan();
      else if (phase === 'scan-kernels') await scanKernels();
      else if (phase === 'recurrence') await recurrence();
      else if (phase.startsWith('flags:')) setFlags(phase.slice('flags:'.length));
      else if (phase === 'swa') await slidingWindowAttention();
      else if (phase.startsWith('step:')) {
        const [, configFile, overrides] = phase.split(':');
        await profileStep(configFile ?? '', overrides === undefined ? [] : overrides.split(','));
      } else if (phase.startsWith('replay:')) {
        const [, configFile, overrides] = phase.split(':');
        await replayTimes(configFile ?? '', overrides === undefined ? [] : overrides.split(','));
      } else if (phase.startsWith('dispatches:')) {
        const [, configFile, overrides] = phase.split(':');
        await dispatchTimes(configFile ?? '', overrides === undefined ? [] : overrides.split(','));
      } else if (phase.startsWith('hybrid')) {
        const [, batch, length] = phase.split(':');
        await hybrid(Number(batch ?? 16), length === undefined ? undefined : Number(length));
      } else throw new Error(`unknown phase '${phase}'`);
    } catch (error) {
      report('failed', { phase, error: error instanceof Error ? error.message.split('\n')[0] : String(error) });
    }
    report('phase done', { phase, seconds: (performance.now() - started) / 1000, tensors: tf.memory().numTensors });
  }
}

await main();
process.exit(0);
