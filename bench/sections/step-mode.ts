import { capabilitiesOf, LanguageModel, REGISTRIES, registryOf, SeededRandom } from '@interleave/core';
import { createRunContainer } from '@interleave/train';
import * as tf from '@tensorflow/tfjs';
import { inductionTestBatches, lastPredictionsByStep, StepModeReplay } from '../../packages/eval/src/index.js';
import type { Job } from '../isolation/job.js';
import { failureCell, runIsolated } from '../isolation/run-isolated.js';
import { type Measurement, measure, type RepeatPlan } from '../measure/timing.js';
import type { BenchTable, Row } from '../report/table.js';
import type { Section, SectionContext } from '../section.js';

/**
 * Step-mode evaluation (`induction_extrapolation`'s token-by-token loop, `lastPredictionsByStep`)
 * through tfjs against the recorded step replayed (`step_replay: auto`; docs/design.md, "Replayed
 * steps"), on the Mamba paper's induction models: two layers at d_model 64, vocabulary 16. The
 * replay exists for webgpu; on other backends both columns run through tfjs.
 */
interface StepModeCase {
  readonly label: string;
  readonly block: string;
  readonly config: Record<string, unknown>;
  readonly batch: number;
  readonly length: number;
  readonly plan: RepeatPlan;
}

interface StepModeRecord {
  readonly tfjs: Measurement;
  readonly replayed: Measurement;
  readonly status: string;
  readonly sameLogits: boolean;
}

// Unprofiled: a run is ~10^5 tfjs kernels, and tf.profile's per-kernel work made the first run
// alone outlast a five-minute limit on the H200 (docs/benchmarks.md).
const FULL = { batch: 1000, length: 1024, plan: { warmup: 1, repeats: 3, profileMemory: false } } as const;
const SMOKE = { batch: 8, length: 48, plan: { warmup: 1, repeats: 1, profileMemory: false } } as const;

function cases(smoke: boolean): StepModeCase[] {
  const shape = smoke ? SMOKE : FULL;
  return [
    { ...shape, label: 'Mamba ×2 (d_state 16)', block: 'mamba', config: { d_state: 16 } },
    { ...shape, label: 'RG-LRU ×2', block: 'rglru', config: {} },
  ];
}

export const stepModeSection: Section = {
  name: 'step-mode',
  async run(context: SectionContext): Promise<BenchTable[]> {
    const rows: Row[] = [];
    const failures: string[] = [];
    const all = cases(context.options.smoke);
    for (const entry of all) {
      context.progress(`step-mode: ${entry.label}, ${entry.batch} × ${entry.length} tokens`);
      const run = await runIsolated<StepModeRecord>('step-mode.compare', entry, context.backend.name);
      const record = run.records[0];
      if (run.failure) failures.push(`${entry.label}: ${run.failure}.`);
      const perStep = (measurement: Measurement | undefined) =>
        measurement === undefined ? failureCell(run.failure) : measurement.medianMs / entry.length;
      rows.push({
        model: entry.label,
        tfjsMs: perStep(record?.tfjs),
        replayedMs: perStep(record?.replayed),
        speedup: record ? record.tfjs.medianMs / record.replayed.medianMs : null,
        tokenSteps: record ? (entry.batch * entry.length) / (record.replayed.medianMs / 1000) : null,
        sameLogits: record ? (record.sameLogits ? 'yes' : 'NO') : null,
        status: record?.status ?? null,
      });
    }
    const { batch, length, plan } = all[0] as StepModeCase;
    return [
      {
        id: 'step-mode',
        title: 'Step-mode evaluation: through tfjs vs the recorded step replayed',
        columns: [
          { key: 'model', header: 'model', kind: 'text' },
          { key: 'tfjsMs', header: 'tfjs ms/step', kind: 'ms' },
          { key: 'replayedMs', header: 'replayed ms/step', kind: 'ms' },
          { key: 'speedup', header: 'replay speed-up × (tfjs ÷ replayed)', kind: 'ratio' },
          { key: 'tokenSteps', header: 'replayed token-steps/s', kind: 'rate' },
          { key: 'sameLogits', header: 'same last logits', kind: 'text' },
          { key: 'status', header: 'replay', kind: 'text' },
        ],
        rows,
        notes: [
          `Two layers, d_model 64, vocabulary 16 (the induction models of configs/repro/mamba-induction/), untrained; one batch of ${batch} induction test sequences of ${length} tokens, every token through the step form and the last step's logits read back, as \`induction_extrapolation\` does. "ms/step" is a whole sequence's time over its ${length} steps.`,
          `Median of up to ${plan.repeats} runs after ${plan.warmup} warm-up run, both forms in one fresh process (tfjs first); each replayed run records its own two steps first. "same last logits" compares the two forms' last logits bit for bit.`,
          'Replay is for webgpu only: on another backend both forms step through tfjs and the ratio is ~1×.',
          ...failures,
        ],
      },
    ];
  },
};

/** Child side: one model, both forms on one batch. */
export const compareStepModeJob: Job<StepModeCase> = async (entry, emit) => {
  const container = await createRunContainer([], () => ({ file: 'bench' }));
  const block = registryOf(container, REGISTRIES.blocks).get(entry.block);
  if (block === undefined) throw new Error(`no block '${entry.block}' is registered`);
  const layer = { block, config: block.schema.parse(entry.config), mlp: null, path: [] };
  const model = LanguageModel.build({
    container,
    config: { vocab_size: 16, d_model: 64, layers: [], tie_embeddings: true, norm_eps: 1e-5 },
    layers: [layer, layer],
    rng: new SeededRandom(0),
    backend: capabilitiesOf(tf.getBackend()),
  });
  const [batch] = inductionTestBatches(0, 16, entry.length, entry.batch, entry.batch);
  if (batch === undefined) throw new Error('no test batch');
  let tfjsLogits: Float32Array | undefined;
  const tfjs = await measure(async () => {
    tfjsLogits = (await lastPredictionsByStep(model, batch)).logits;
  }, entry.plan);
  let replayedLogits: Float32Array | undefined;
  let status = '';
  const replayed = await measure(async () => {
    const replay = new StepModeReplay('auto');
    replayedLogits = (await lastPredictionsByStep(model, batch, replay)).logits;
    status = replay.status;
  }, entry.plan);
  const sameLogits =
    tfjsLogits !== undefined &&
    replayedLogits !== undefined &&
    tfjsLogits.length === replayedLogits.length &&
    tfjsLogits.every((value, index) => Object.is(value, replayedLogits?.[index]));
  await emit({ tfjs, replayed, status, sameLogits } satisfies StepModeRecord);
  model.dispose();
};
