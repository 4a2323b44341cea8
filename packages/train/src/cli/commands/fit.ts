import { existsSync, statSync } from 'node:fs';
import { InterleaveError } from '@interleave/core';
import {
  COMPUTE_LAW_MIN_POINTS,
  type ComputeLawFit,
  type ComputePoint,
  DEFAULT_LOSS_METRIC,
  dropHighestLoss,
  fitChinchilla,
  fitComputeLaw,
  formatChinchillaTable,
  formatComputeLawTable,
  readChinchillaCsv,
  readComputeCsv,
  readExperimentChinchillaPoints,
  readExperimentComputePoints,
  type SkippedRun,
} from '@interleave/eval';
import { type Command, parseCommandLine } from '../command.js';

const DEFAULT_BOOTSTRAP = 200;

const OPTIONS = {
  law: { type: 'string', default: 'compute' },
  json: { type: 'boolean', default: false },
  bootstrap: { type: 'string' },
  seed: { type: 'string', default: '0' },
  confidence: { type: 'string', default: '0.95' },
  'drop-highest': { type: 'string', default: '0' },
  uri: { type: 'string' },
  'loss-metric': { type: 'string' },
  'n-col': { type: 'string' },
  'd-col': { type: 'string' },
  'flops-col': { type: 'string' },
  'loss-col': { type: 'string' },
  'compute-col': { type: 'string' },
  'group-col': { type: 'string' },
} as const;

type Values = ReturnType<typeof parseCommandLine<typeof OPTIONS>>['values'];

/** Where the points come from, for messages and the JSON output. */
type Source = { kind: 'csv'; file: string } | { kind: 'experiment'; experiment: string; uri: string };

interface Settings {
  bootstrap: number;
  seed: number;
  confidence: number;
  dropHighest: number;
}

export const fitCommand: Command = {
  name: 'fit',
  usage: `  fit <experiment|file.csv> [--law compute|chinchilla] [--json] [--bootstrap N] [--drop-highest K]
      fit a scaling law (docs/design.md#scaling-laws) to an MLflow experiment's FINISHED runs or to a CSV file
      --law compute          L(C) = E + A·C^(-alpha) per architecture (tag interleave.architecture),
                             C = last compute/flops (default)
      --law chinchilla       L(N,D) = E + A/N^alpha + B/D^beta by Chinchilla's approach 3,
                             N = param model.parameters, D = last compute/tokens
      --json                 print one JSON object on stdout instead of a table
      --bootstrap N          bootstrap resamples for the confidence intervals (default ${DEFAULT_BOOTSTRAP}; 0: none)
      --seed S --confidence C  resampling seed (default 0) and interval coverage (default 0.95)
      --drop-highest K       leave out the K highest-loss points (of each architecture for --law compute)
      --uri URI              MLflow tracking URI of the experiment (default ./mlruns)
      --loss-metric KEY      the metric whose last value is the loss (default ${DEFAULT_LOSS_METRIC})
      CSV columns:           --loss-col (default loss); compute law: --compute-col (default compute),
                             --group-col; chinchilla: --n-col and --d-col or --flops-col (D = FLOP/6N)`,
  async run(args) {
    const { values, positionals } = parseCommandLine(args, OPTIONS);
    if (positionals.length !== 1) {
      throw new InterleaveError('fit takes one experiment name or CSV file: interleave fit <experiment|file.csv>');
    }
    const target = positionals[0] as string;
    const source: Source = isCsv(target)
      ? { kind: 'csv', file: target }
      : { kind: 'experiment', experiment: target, uri: values.uri ?? './mlruns' };
    checkFlagsApply(values, source);
    const settings: Settings = {
      bootstrap: integerFlag('--bootstrap', values.bootstrap ?? String(DEFAULT_BOOTSTRAP)),
      seed: integerFlag('--seed', values.seed),
      confidence: confidenceFlag(values.confidence),
      dropHighest: integerFlag('--drop-highest', values['drop-highest']),
    };
    if (values.law === 'chinchilla') return fitChinchillaLaw(values, source, settings);
    if (values.law === 'compute') return fitComputeLaws(values, source, settings);
    throw new InterleaveError(`unknown --law '${values.law}' (choose compute or chinchilla)`);
  },
};

async function fitChinchillaLaw(values: Values, source: Source, settings: Settings): Promise<number> {
  let points: { n: number; d: number; loss: number }[];
  let skipped: SkippedRun[] = [];
  if (source.kind === 'csv') {
    if (values['n-col'] === undefined) throw new InterleaveError('--law chinchilla on a CSV needs --n-col <column>');
    if ((values['d-col'] === undefined) === (values['flops-col'] === undefined)) {
      throw new InterleaveError(
        '--law chinchilla on a CSV needs --d-col <column> or --flops-col <column> (one of them)',
      );
    }
    points = await readChinchillaCsv(source.file, {
      n: values['n-col'],
      d: values['d-col'],
      flops: values['flops-col'],
      loss: values['loss-col'] ?? 'loss',
    });
  } else {
    ({ points, skipped } = await readExperimentChinchillaPoints(source.uri, source.experiment, {
      lossMetric: values['loss-metric'],
    }));
    reportSkipped(skipped);
  }
  const kept = dropHighestLoss(points, settings.dropHighest);
  const started = performance.now();
  const fit = fitChinchilla(kept, {
    bootstrap: settings.bootstrap,
    seed: settings.seed,
    confidence: settings.confidence,
  });
  const seconds = (performance.now() - started) / 1000;
  if (values.json) {
    const output = {
      law: 'chinchilla',
      ...describeSource(source),
      ...fit,
      dataOptimalExponent: 1 - fit.computeOptimalExponent,
      dropped: points.length - kept.length,
      bootstrap: settings.bootstrap,
      seed: settings.seed,
      ...(source.kind === 'experiment' ? { skipped } : {}),
      seconds,
    };
    process.stdout.write(`${JSON.stringify(output)}\n`);
    return 0;
  }
  const dropped = points.length - kept.length;
  process.stdout.write(
    `Chinchilla approach 3: L(N, D) = E + A/N^alpha + B/D^beta, ${describe(source)}\n` +
      `${kept.length} points${dropped > 0 ? ` (${dropped} highest-loss dropped)` : ''}, ` +
      `Huber objective ${fit.objective.toPrecision(6)}, fitted in ${seconds.toFixed(1)} s\n\n` +
      formatChinchillaTable(fit, settings.bootstrap),
  );
  return 0;
}

async function fitComputeLaws(values: Values, source: Source, settings: Settings): Promise<number> {
  let groups: Map<string, ComputePoint[]>;
  let skipped: SkippedRun[] = [];
  if (source.kind === 'csv') {
    groups = await readComputeCsv(source.file, {
      compute: values['compute-col'] ?? 'compute',
      loss: values['loss-col'] ?? 'loss',
      group: values['group-col'],
    });
  } else {
    ({ groups, skipped } = await readExperimentComputePoints(source.uri, source.experiment, {
      lossMetric: values['loss-metric'],
    }));
    reportSkipped(skipped);
  }
  const eligible = [...groups].map(([name, points]) => ({
    name,
    points: dropHighestLoss(points, settings.dropHighest),
  }));
  const tooSmall = eligible.filter((group) => group.points.length < COMPUTE_LAW_MIN_POINTS);
  if (tooSmall.length === eligible.length) {
    const counts = eligible.map((group) => `${group.name}: ${group.points.length}`).join(', ');
    throw new InterleaveError(
      `too few points: a compute-law fit needs at least ${COMPUTE_LAW_MIN_POINTS} per group, ${describe(source)} has ${counts === '' ? 'none' : counts}`,
    );
  }
  for (const group of tooSmall) {
    process.stderr.write(
      `interleave: not fitting '${group.name}': ${group.points.length} points, a compute-law fit needs at least ${COMPUTE_LAW_MIN_POINTS}\n`,
    );
  }
  const started = performance.now();
  const fits: { name: string; fit: ComputeLawFit }[] = [];
  for (const group of eligible) {
    if (group.points.length < COMPUTE_LAW_MIN_POINTS) continue;
    const options = { bootstrap: settings.bootstrap, seed: settings.seed, confidence: settings.confidence };
    fits.push({ name: group.name, fit: fitComputeLaw(group.points, options) });
  }
  const seconds = (performance.now() - started) / 1000;
  const groupLabel = source.kind === 'experiment' ? 'architecture' : (values['group-col'] ?? 'group');
  if (values.json) {
    const output = {
      law: 'compute',
      ...describeSource(source),
      fits: fits.map(({ name, fit }) => ({ group: name, ...fit })),
      tooFewPoints: tooSmall.map((group) => ({ group: group.name, points: group.points.length })),
      bootstrap: settings.bootstrap,
      seed: settings.seed,
      ...(source.kind === 'experiment' ? { skipped } : {}),
      seconds,
    };
    process.stdout.write(`${JSON.stringify(output)}\n`);
    return 0;
  }
  process.stdout.write(
    `Compute law L(C) = E + A·C^(-alpha), ${describe(source)}\n` +
      `${settings.bootstrap > 0 ? `intervals: bootstrap percentiles from ${settings.bootstrap} resamples; ` : ''}fitted in ${seconds.toFixed(1)} s\n\n` +
      formatComputeLawTable(fits, groupLabel, settings.bootstrap),
  );
  return 0;
}

/** A `.csv` name or an existing file is read as a CSV; anything else names an experiment. */
function isCsv(target: string): boolean {
  if (/\.csv$/i.test(target)) return true;
  return existsSync(target) && statSync(target).isFile();
}

/** Flags for the other kind of input would be silently ignored; say so instead. */
function checkFlagsApply(values: Values, source: Source): void {
  const csvOnly = ['n-col', 'd-col', 'flops-col', 'loss-col', 'compute-col', 'group-col'] as const;
  const experimentOnly = ['uri', 'loss-metric'] as const;
  const wrong =
    source.kind === 'csv'
      ? experimentOnly.find((flag) => values[flag] !== undefined)
      : csvOnly.find((flag) => values[flag] !== undefined);
  if (wrong !== undefined) {
    throw new InterleaveError(
      `--${wrong} applies to ${source.kind === 'csv' ? 'MLflow experiments' : 'CSV files'}, not to ${describe(source)}`,
    );
  }
}

function reportSkipped(skipped: readonly SkippedRun[]): void {
  for (const run of skipped) {
    process.stderr.write(`interleave: skipping run ${run.runName || run.runId}: ${run.reason}\n`);
  }
}

function describe(source: Source): string {
  return source.kind === 'csv' ? source.file : `experiment '${source.experiment}' (${source.uri})`;
}

function describeSource(source: Source): Record<string, string> {
  return source.kind === 'csv' ? { csv: source.file } : { experiment: source.experiment, uri: source.uri };
}

function integerFlag(flag: string, text: string): number {
  const value = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(value)) {
    throw new InterleaveError(`${flag} takes a non-negative integer, got '${text}'`);
  }
  return value;
}

function confidenceFlag(text: string): number {
  const value = Number(text);
  if (!(value > 0 && value < 1))
    throw new InterleaveError(`--confidence takes a number between 0 and 1, got '${text}'`);
  return value;
}
