import { slidingWindowAttentionBlock } from '@interleave/blocks';
import { capabilitiesOf, ParameterStore, SeededRandom } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { attentionForwardVia } from '../../packages/blocks/src/attention.js';
import type { Job } from '../isolation/job.js';
import { failureCell, runIsolated } from '../isolation/run-isolated.js';
import { type Measurement, measure, type RepeatPlan } from '../measure/timing.js';
import type { BenchTable, Row } from '../report/table.js';
import type { Section, SectionContext } from '../section.js';

/**
 * Sliding-window attention's two formulations on the same parameters (docs/design.md#attention): the banded
 * O(L·w) form the block picks for w ≪ L, and the dense masked O(L²) form.
 */
interface SwaCase {
  readonly length: number;
  readonly window: number;
  readonly dModel: number;
  readonly heads: number;
  readonly batch: number;
  readonly plan: RepeatPlan;
}

const FULL_LENGTHS = [1024, 4096];
const SMOKE_LENGTHS = [32, 64];
const FULL: Omit<SwaCase, 'length'> = { window: 64, dModel: 256, heads: 4, batch: 1, plan: { warmup: 2, repeats: 5 } };
const SMOKE: Omit<SwaCase, 'length'> = { window: 8, dModel: 16, heads: 2, batch: 1, plan: { warmup: 1, repeats: 1 } };

type Path = 'banded' | 'dense';

interface SwaRecord {
  readonly path: Path;
  readonly measurement: Measurement;
}

export const swaSection: Section = {
  name: 'swa',
  async run(context: SectionContext): Promise<BenchTable[]> {
    const smoke = context.options.smoke;
    const shape = smoke ? SMOKE : FULL;
    const rows: Row[] = [];
    const failures: string[] = [];
    for (const length of smoke ? SMOKE_LENGTHS : FULL_LENGTHS) {
      context.progress(`swa: banded vs dense, L=${length}, w=${shape.window}`);
      const run = await runIsolated<SwaRecord>('swa.compare', { ...shape, length }, context.backend.name);
      const banded = run.records.find((record) => record.path === 'banded')?.measurement;
      const dense = run.records.find((record) => record.path === 'dense')?.measurement;
      if (run.failure) failures.push(`L = ${length}, ${banded ? 'dense' : 'banded'}: ${run.failure}.`);
      rows.push({
        length,
        window: shape.window,
        bandedMs: banded?.medianMs ?? failureCell(run.failure),
        denseMs: dense?.medianMs ?? failureCell(run.failure),
        speedup: banded && dense ? dense.medianMs / banded.medianMs : null,
        bandedTensorBytes: banded?.peakTensorBytes ?? null,
        denseTensorBytes: dense?.peakTensorBytes ?? null,
        peakRssBytes: Math.max(banded?.peakRssBytes ?? 0, dense?.peakRssBytes ?? 0) || null,
        denseRuns: dense?.samplesMs.length ?? null,
      });
    }
    const { dModel, heads, batch, plan } = shape;
    return [
      {
        id: 'swa',
        title: 'Sliding-window attention: banded vs dense (forward + backward)',
        columns: [
          { key: 'length', header: 'L', kind: 'int' },
          { key: 'window', header: 'w', kind: 'int' },
          { key: 'bandedMs', header: 'banded ms', kind: 'ms' },
          { key: 'denseMs', header: 'dense ms', kind: 'ms' },
          { key: 'speedup', header: 'banded speed-up × (dense ms ÷ banded ms)', kind: 'ratio' },
          { key: 'bandedTensorBytes', header: 'banded peak tensors MiB', kind: 'mib' },
          { key: 'denseTensorBytes', header: 'dense peak tensors MiB', kind: 'mib' },
          { key: 'peakRssBytes', header: 'peak RSS MiB', kind: 'mib' },
        ],
        rows,
        notes: [
          `One swa block (d_model ${dModel}, ${heads} heads, RoPE) at batch ${batch}, both forms on the same parameters (attentionForwardVia): projections, RoPE, attention, output projection, then the gradients of Σ y ⊙ R for the input and every parameter.`,
          `Median of up to ${plan.repeats} runs after ${plan.warmup} warm-up runs, both forms of a row in one fresh process (banded first); a form whose run takes over 5 s gets one warm-up run and timed runs for 30 s (dense at L = 4096: ${rows.at(-1)?.denseRuns ?? '—'} timed).`,
          'Banded costs O(L·w) and dense O(L²): from L = 1024 to 4096 banded should take about 4× longer, dense about 16×.',
          ...failures,
        ],
      },
    ];
  },
};

/** Child side. */
export const compareSwaJob: Job<SwaCase> = async (swaCase, emit) => {
  const { length, window, dModel, heads, batch, plan } = swaCase;
  const store = new ParameterStore(new SeededRandom(0));
  const mixer = slidingWindowAttentionBlock.create(
    {
      dModel,
      params: store.root().scope('mixer'),
      rng: new SeededRandom(0, 'swa'),
      backend: capabilitiesOf(tf.getBackend()),
    },
    slidingWindowAttentionBlock.schema.parse({ window, heads }),
  );
  const x = tf.randomNormal([batch, length, dModel], 0, 1, 'float32', 1) as tf.Tensor3D;
  const weights = tf.randomNormal([batch, length, dModel], 0, 1, 'float32', 2);
  // The input as a trainable variable, so one backward pass yields its gradient and the parameters'.
  const input = tf.variable(x, true, 'swa_bench_input');
  const variables = [input, ...store.list().map((entry) => entry.variable)];
  for (const path of ['banded', 'dense'] as const) {
    const forwardBackward = async () => {
      const total = tf.tidy(() => {
        const { grads } = tf.variableGrads(
          () =>
            attentionForwardVia(mixer, input as tf.Tensor3D, path)
              .mul(weights)
              .sum() as tf.Scalar,
          variables,
        );
        return tf.addN(Object.values(grads).map((gradient) => gradient.sum()));
      });
      await total.data();
      total.dispose();
    };
    await emit({ path, measurement: await measure(forwardBackward, plan) } satisfies SwaRecord);
  }
  tf.dispose([x, weights, input]);
  store.dispose();
};
