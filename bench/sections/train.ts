import { relative } from 'node:path';
import { capabilitiesOf, LanguageModel, SeededRandom } from '@interleave/core';
import { batchWorkerFor, loadExperimentConfig, prepareRun, Trainer } from '@interleave/train';
import * as tf from '@tensorflow/tfjs';
import type { Job } from '../isolation/job.js';
import { failureCell, runIsolated } from '../isolation/run-isolated.js';
import { type Measurement, measure, type RepeatPlan } from '../measure/timing.js';
import type { BenchTable, Row } from '../report/table.js';
import type { HybridThroughput, Section, SectionContext } from '../section.js';

/**
 * Training throughput through the real training path (config → prepareRun → LanguageModel →
 * Trainer.trainStep: batch, forward, masked cross-entropy, backward, clipping, AdamW), on the
 * reference hybrid and on models of one block type at the hybrid's shapes. Tokens/s counts
 * B·L training tokens per step, timed after 3 warm-up steps (docs/design.md#benchmarks).
 */
export interface TrainModelParams {
  readonly configFile: string;
  readonly overrides: readonly string[];
  /** `none`: embedding, final norm and tied head only (the cost every row shares). */
  readonly layers: 'config' | 'none';
  readonly plan: RepeatPlan;
}

export interface TrainRecord {
  readonly parameters: number;
  readonly layerCount: number;
  readonly tokensPerStep: number;
  readonly measurement: Measurement;
}

/** docs/design.md#benchmarks: tokens/s after 3 warm-up steps; the median of 3 timed steps. */
const FULL_PLAN: RepeatPlan = { warmup: 3, repeats: 3, exact: true };
const SMOKE_PLAN: RepeatPlan = { warmup: 1, repeats: 1 };
/** Shrinks the hybrid so that --smoke runs in seconds. */
const SMOKE_OVERRIDES = ['model.d_model=16', 'task.seq_len=32', 'task.num_kv_pairs=4'];

/** One layer type per row, 4 layers each (the hybrid has 4 of each kind), no MLP. */
const BLOCK_ROWS: ReadonlyArray<{ label: string; entry: string }> = [
  { label: 'mamba', entry: '{block: mamba, d_state: 16, d_conv: 4, expand: 2}' },
  { label: 'rglru', entry: '{block: rglru}' },
  { label: 'swa (window 128)', entry: '{block: swa, window: 128, heads: 4}' },
  { label: 'attention (full)', entry: '{block: attention, heads: 4}' },
  { label: 'hyena', entry: '{block: hyena}' },
];
const LAYERS_PER_BLOCK_ROW = 4;

/** The hybrid's run parameters at `batchSize` (the config's own when undefined). */
export function hybridParams(context: SectionContext, batchSize?: number): TrainModelParams {
  const { smoke, config } = context.options;
  const batch = batchSize === undefined ? [] : [`train.batch_size=${batchSize}`];
  return {
    configFile: config,
    overrides: [...(smoke ? SMOKE_OVERRIDES : []), ...batch],
    layers: 'config',
    plan: smoke ? SMOKE_PLAN : FULL_PLAN,
  };
}

interface HybridAttempt {
  readonly batchSize: number;
  readonly record?: TrainRecord;
  readonly failure?: string;
}

/**
 * Trains the reference hybrid at the config's batch size, halving it while the backend runs out
 * of memory (tfjs-wasm's heap is capped at 4 GiB, which the hybrid at batch 2 × 1024 exceeds).
 * The batch that ran is shared with the block rows and the peer, so every ratio compares the
 * same shapes.
 */
export async function measureHybrid(context: SectionContext): Promise<HybridAttempt[]> {
  const configured = (await loadExperimentConfig(context.options.config, hybridParams(context).overrides)).config.train
    .batch_size;
  const attempts: HybridAttempt[] = [];
  for (let batchSize = configured; batchSize >= 1; batchSize = Math.floor(batchSize / 2)) {
    context.progress(`train: reference hybrid, batch ${batchSize}`);
    const run = await runIsolated<TrainRecord>('train.model', hybridParams(context, batchSize), context.backend.name);
    const record = run.records[0];
    attempts.push({ batchSize, ...(record ? { record } : {}), ...(run.failure ? { failure: run.failure } : {}) });
    if (record) {
      context.shared.hybrid = { ...toThroughput(record), batchSize };
      break;
    }
    if (!run.failure?.startsWith('out of memory')) break;
  }
  return attempts;
}

export function toThroughput(record: TrainRecord): Omit<HybridThroughput, 'batchSize'> {
  const seconds = record.measurement.medianMs / 1000;
  return {
    tokensPerSecond: record.tokensPerStep / seconds,
    stepMs: record.measurement.medianMs,
    parameters: record.parameters,
    peakRssBytes: record.measurement.peakRssBytes,
    peakGpuBytes: record.measurement.peakGpuBytes,
  };
}

interface RowResult {
  readonly label: string;
  readonly record?: TrainRecord;
  readonly failure?: string;
}

export const trainSection: Section = {
  name: 'train',
  async run(context: SectionContext): Promise<BenchTable[]> {
    const configName = relative(process.cwd(), context.options.config) || context.options.config;
    const attempts = await measureHybrid(context);
    const hybrid = context.shared.hybrid;
    const base = hybridParams(context, hybrid?.batchSize);
    const results: RowResult[] = attempts.map((attempt) => ({
      label: `reference hybrid (${configName}), batch ${attempt.batchSize}`,
      ...attempt,
    }));
    const others: Array<{ label: string; params: TrainModelParams }> = [
      ...BLOCK_ROWS.map(({ label, entry }) => ({
        label: `${label} ×${LAYERS_PER_BLOCK_ROW}`,
        params: {
          ...base,
          overrides: [...base.overrides, `model.layers=[{repeat: ${LAYERS_PER_BLOCK_ROW}, pattern: [${entry}]}]`],
        },
      })),
      { label: 'no mixer layers (embedding, norm, tied head)', params: { ...base, layers: 'none' as const } },
    ];
    for (const row of others) {
      context.progress(`train: ${row.label}`);
      const run = await runIsolated<TrainRecord>('train.model', row.params, context.backend.name);
      results.push({ label: row.label, ...(run.records[0] ? { record: run.records[0] } : {}), failure: run.failure });
    }
    const baseline = results.at(-1)?.record;
    const rows = results.map(({ label, record, failure }): Row => {
      if (record === undefined) return { model: label, stepMs: failureCell(failure) };
      const throughput = toThroughput(record);
      const perLayer =
        baseline && record.layerCount > 0
          ? (record.measurement.medianMs - baseline.measurement.medianMs) / record.layerCount
          : null;
      return {
        model: label,
        layers: record.layerCount,
        parameters: record.parameters,
        stepMs: record.measurement.medianMs,
        tokensPerSecond: throughput.tokensPerSecond,
        versusHybrid: hybrid ? throughput.tokensPerSecond / hybrid.tokensPerSecond : null,
        perLayerMs: perLayer,
        peakTensorBytes: record.measurement.peakTensorBytes,
        peakRssBytes: record.measurement.peakRssBytes,
        peakGpuBytes: record.measurement.peakGpuBytes,
      };
    });
    const failures = results.filter((result) => result.failure).map((result) => `${result.label}: ${result.failure}.`);
    const shrunk = attempts.length > 1 && hybrid !== undefined;
    return [
      {
        id: 'train',
        title: 'Training throughput (forward + backward + AdamW step)',
        columns: [
          { key: 'model', header: 'model', kind: 'text' },
          { key: 'layers', header: 'layers', kind: 'int' },
          { key: 'parameters', header: 'parameters', kind: 'int' },
          { key: 'stepMs', header: 'step ms', kind: 'ms' },
          { key: 'tokensPerSecond', header: 'tokens/s', kind: 'rate' },
          { key: 'versusHybrid', header: '× hybrid (tokens/s ÷ hybrid tokens/s)', kind: 'ratio' },
          { key: 'perLayerMs', header: 'ms per layer ((step − no-mixer step) ÷ layers)', kind: 'ms' },
          { key: 'peakTensorBytes', header: 'peak tensors MiB', kind: 'mib' },
          { key: 'peakRssBytes', header: 'peak RSS MiB', kind: 'mib' },
          ...(context.backend.name === 'webgpu'
            ? [{ key: 'peakGpuBytes', header: 'peak GPU MiB (buffers held)', kind: 'mib' as const }]
            : []),
        ],
        rows,
        notes: [
          `Every row uses the reference hybrid's vocabulary, d_model, task (MQAR, ${context.options.smoke ? 'shrunk by --smoke' : 'seq_len 1024'}) and optimiser at batch ${hybrid?.batchSize ?? '—'}; block rows replace its layers by ${LAYERS_PER_BLOCK_ROW} layers of one block with no MLP.`,
          ...(shrunk
            ? [
                `The config's batch (${attempts[0]?.batchSize}) ran out of memory, so the hybrid, the block rows and the peer run at batch ${hybrid.batchSize}: tfjs-wasm's heap is capped at 4 GiB (32-bit wasm), and the hybrid's training step at batch ${hybrid.batchSize} already peaks at ${formatGiB(attempts.at(-1)?.record?.measurement.peakTensorBytes ?? undefined)} of live tensors.`,
              ]
            : []),
          `Median step time over ${base.plan.repeats} steps after ${base.plan.warmup} warm-up steps; a step is Trainer.trainStep (batch, forward, masked cross-entropy, backward, gradient clipping, AdamW), each row in a fresh process.`,
          'The last row is the cost every model pays (embedding gather, final RMSNorm, the tied 8192-way head and its loss, AdamW over the embedding); "ms per layer" subtracts it.',
          ...failures,
        ],
      },
    ];
  },
};

function formatGiB(bytes: number | undefined): string {
  return bytes === undefined ? '—' : `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

/** Child side: builds the model from the config exactly as `interleave train` does, then times steps. */
export const trainModelJob: Job<TrainModelParams> = async (params, emit) => {
  const { loaded, container, layers, task } = await prepareRun(params.configFile, params.overrides);
  const { config } = loaded;
  const chosen = params.layers === 'none' ? [] : layers;
  const model = LanguageModel.build({
    container,
    config: config.model,
    layers: chosen,
    rng: new SeededRandom(config.seed),
    backend: capabilitiesOf(tf.getBackend()),
  });
  const taskInstance = task.definition.create(task.config, { vocabSize: config.model.vocab_size, seed: config.seed });
  const trainer = new Trainer(model, taskInstance, config.train, {
    batchWorker: batchWorkerFor(loaded, tf.getBackend()),
  });
  let tokensPerStep = 0;
  const measurement = await measure(async () => {
    tokensPerStep = (await trainer.trainStep()).tokens;
  }, params.plan);
  await emit({
    parameters: model.parameters.count(),
    layerCount: chosen.length,
    tokensPerStep,
    measurement,
  } satisfies TrainRecord);
  trainer.dispose();
  model.dispose();
};
