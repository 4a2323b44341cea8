import { capabilitiesOf, generate, LanguageModel, REGISTRIES, registryOf, SeededRandom } from '@interleave/core';
import { createRunContainer } from '@interleave/train';
import * as tf from '@tensorflow/tfjs';
import type { Job } from '../isolation/job.js';
import { failureCell, runIsolated } from '../isolation/run-isolated.js';
import { PeakRss } from '../measure/memory.js';
import { mean, median } from '../measure/timing.js';
import type { BenchTable, Column, Row } from '../report/table.js';
import type { Section, SectionContext } from '../section.js';

/**
 * Per-token generation time in step form (`generate`, greedy, one sequence) at growing
 * positions: flat for recurrent blocks and sliding windows, whose state has a fixed size;
 * growing for full attention, whose KV cache holds every earlier token.
 */
interface GenerateCase {
  readonly label: string;
  readonly block: string;
  readonly config: Record<string, unknown>;
  readonly state: string;
  readonly dModel: number;
  readonly vocab: number;
  /** Token positions at which the per-token time is read; the run generates up to the last. */
  readonly marks: readonly number[];
  /** The time at a mark is the mean over this many tokens ending at the mark. */
  readonly span: number;
  /** Tokens generated (and thrown away) first, so that the JIT has settled before position 1. */
  readonly warmupTokens: number;
}

interface MarkRecord {
  readonly mark: number;
  readonly meanMs: number;
  readonly medianMs: number;
  readonly tensorBytes: number;
  readonly rssBytes: number;
}

interface GenerateRecord {
  readonly parameters: number;
  readonly marks: readonly MarkRecord[];
  readonly peakTensorBytes: number;
  readonly peakRssBytes: number;
  readonly seconds: number;
}

const K = 1024;
const DEFAULT_MARKS = [K, 16 * K];
const LONG_MARKS = [K, 16 * K, 256 * K];
/** Full attention costs O(t) per token, O(T²) in all: 256k tokens would copy ~4 TB of cache. */
const GROWING_MAX_MARK = 16 * K;

function cases(smoke: boolean, long: boolean): GenerateCase[] {
  const dModel = smoke ? 16 : 64;
  const window = smoke ? 8 : 128;
  const heads = smoke ? 2 : 4;
  const marks = smoke ? [32, 64] : long ? LONG_MARKS : DEFAULT_MARKS;
  const growingMarks = smoke ? [32, 64] : marks.filter((mark) => mark <= GROWING_MAX_MARK);
  const shared = { dModel, vocab: 256, span: smoke ? 16 : 1024, warmupTokens: smoke ? 8 : 2048 };
  return [
    { ...shared, label: 'mamba', block: 'mamba', config: { d_state: 16 }, state: 'h + conv window (fixed)', marks },
    { ...shared, label: 'rglru', block: 'rglru', config: {}, state: 'h + conv window (fixed)', marks },
    {
      ...shared,
      label: `swa (window ${window})`,
      block: 'swa',
      config: { window, heads },
      state: `ring buffer of ${window} keys/values (fixed)`,
      marks,
    },
    {
      ...shared,
      label: 'attention (full)',
      block: 'attention',
      config: { heads },
      state: 'KV cache of every token (grows)',
      marks: growingMarks,
    },
  ];
}

export const generateSection: Section = {
  name: 'generate',
  async run(context: SectionContext): Promise<BenchTable[]> {
    const { smoke, long } = context.options;
    const all = cases(smoke, long);
    const marks = [...new Set(all.flatMap((entry) => entry.marks))].sort((a, b) => a - b);
    const first = marks[0] as number;
    const rows: Row[] = [];
    const notes: string[] = [];
    for (const entry of all) {
      context.progress(`generate: ${entry.label}, ${entry.marks.at(-1)} tokens`);
      const run = await runIsolated<GenerateRecord>('generate.block', entry, context.backend.name);
      const record = run.records[0];
      if (run.failure) notes.push(`${entry.label}: ${run.failure}.`);
      const row: Row = { block: entry.label, state: entry.state, parameters: record?.parameters ?? null };
      const base = record?.marks.find((mark) => mark.mark === first);
      for (const mark of marks) {
        const measured = record?.marks.find((item) => item.mark === mark);
        row[`ms${mark}`] = measured?.meanMs ?? (record ? 'not run' : failureCell(run.failure));
        if (mark === first) continue;
        row[`ratio${mark}`] = measured && base ? measured.meanMs / base.meanMs : null;
        row[`medianRatio${mark}`] = measured && base ? measured.medianMs / base.medianMs : null;
      }
      row.peakTensorBytes = record?.peakTensorBytes ?? null;
      row.peakRssBytes = record?.peakRssBytes ?? null;
      row.seconds = record?.seconds ?? null;
      rows.push(row);
    }
    const label = (mark: number) => (mark >= K ? `${mark / K}k` : String(mark));
    const columns: Column[] = [
      { key: 'block', header: 'block (1 layer)', kind: 'text' },
      { key: 'state', header: 'step state', kind: 'text' },
      ...marks.map((mark): Column => ({ key: `ms${mark}`, header: `ms/token @${label(mark)}`, kind: 'ms' })),
      ...marks
        .filter((mark) => mark !== first)
        .flatMap((mark): Column[] => [
          { key: `ratio${mark}`, header: `${label(mark)} ÷ ${label(first)} × (means)`, kind: 'ratio' },
          { key: `medianRatio${mark}`, header: `${label(mark)} ÷ ${label(first)} × (medians)`, kind: 'ratio' },
        ]),
      { key: 'peakTensorBytes', header: 'peak tensors MiB', kind: 'mib' },
      { key: 'peakRssBytes', header: 'peak RSS MiB', kind: 'mib' },
      { key: 'seconds', header: 'run s', kind: 'rate' },
    ];
    const sample = all[0] as GenerateCase;
    return [
      {
        id: 'generate',
        title: 'Generation: per-token time in step form',
        columns,
        rows,
        notes: [
          `One-layer models (d_model ${sample.dModel}, vocabulary ${sample.vocab}, tied head) generating greedily from a 1-token prompt with \`generate\`; "ms/token @N" is the mean step time over the ${sample.span} tokens ending at position N (the step includes reading the logits back and picking the token). Each block runs in a fresh process, after a throw-away generation of ${sample.warmupTokens} tokens that warms up the JIT.`,
          '"N ÷ first ×" is the per-token time at N over that at the first mark: 1.00× is perfectly flat (target: within ±15% for mamba, rglru and swa). Means include garbage-collection pauses and time lost to other processes; medians of the same windows are steadier on a busy machine.',
          `Full attention stops at ${label(GROWING_MAX_MARK)}: its step is O(t) (its cache grows by one key/value per token and is copied each step), so the total is quadratic — 256k tokens would copy about 4 TB.`,
          ...(long || smoke
            ? []
            : ['The 256k mark runs with `pnpm bench --only generate --long` (several minutes per block).']),
          ...notes,
        ],
      },
    ];
  },
};

/** Child side: one block, generated up to its last mark. */
export const generateBlockJob: Job<GenerateCase> = async (entry, emit) => {
  const container = await createRunContainer([], () => ({ file: 'bench' }));
  const block = registryOf(container, REGISTRIES.blocks).get(entry.block);
  if (block === undefined) throw new Error(`no block '${entry.block}' is registered`);
  const model = LanguageModel.build({
    container,
    config: { vocab_size: entry.vocab, d_model: entry.dModel, layers: [], tie_embeddings: true, norm_eps: 1e-5 },
    layers: [{ block, config: block.schema.parse(entry.config), mlp: null, path: [] }],
    rng: new SeededRandom(0),
    backend: capabilitiesOf(tf.getBackend()),
  });
  // Without this, the first mark would time V8 and tfjs warming up rather than the step itself.
  await generate(model, [[1]], { maxNewTokens: entry.warmupTokens });
  const last = entry.marks.at(-1) as number;
  const atMark = new Map<number, { tensorBytes: number; rssBytes: number }>();
  const rss = PeakRss.start();
  let peakTensorBytes = 0;
  const started = performance.now();
  const { stepMilliseconds } = await generate(model, [[1]], {
    maxNewTokens: last,
    onStep: ({ position, memoryBytes }) => {
      peakTensorBytes = Math.max(peakTensorBytes, memoryBytes);
      // Step `position` has just consumed token position + 1.
      if (entry.marks.includes(position + 1)) {
        atMark.set(position + 1, { tensorBytes: memoryBytes, rssBytes: process.memoryUsage().rss });
      }
    },
  });
  const seconds = (performance.now() - started) / 1000;
  const marks = entry.marks.map((mark): MarkRecord => {
    // stepMilliseconds[i] is the step that consumed token i + 1: the span ends at token `mark`.
    const span = stepMilliseconds.slice(Math.max(0, mark - entry.span), mark);
    const memory = atMark.get(mark) ?? { tensorBytes: Number.NaN, rssBytes: Number.NaN };
    return { mark, meanMs: mean(span), medianMs: median(span), ...memory };
  });
  await emit({
    parameters: model.parameters.count(),
    marks,
    peakTensorBytes,
    peakRssBytes: rss.read(),
    seconds,
  } satisfies GenerateRecord);
  model.dispose();
};
