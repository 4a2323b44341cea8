import { existsSync, statSync } from 'node:fs';
import { InterleaveError } from '@interleave/core';
import {
  type ChinchillaColumns,
  COMPUTE_LAW_MIN_POINTS,
  chinchillaFitJson,
  computeLawJson,
  DEFAULT_LOSS_METRIC,
  describeFitSource,
  type FitSettings,
  type FitSource,
  fitChinchillaSource,
  fitComputeLawSource,
  formatChinchillaFitReport,
  formatComputeLawReport,
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
    const source: FitSource = isCsv(target)
      ? { kind: 'csv', file: target }
      : { kind: 'experiment', experiment: target, uri: values.uri ?? './mlruns' };
    checkFlagsApply(values, source);
    const settings: FitSettings = {
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

async function fitChinchillaLaw(values: Values, source: FitSource, settings: FitSettings): Promise<number> {
  const report = await fitChinchillaSource(source, settings, {
    columns: source.kind === 'csv' ? chinchillaColumns(values) : undefined,
    lossMetric: values['loss-metric'],
    onSkipped: reportSkipped,
  });
  process.stdout.write(
    values.json ? `${JSON.stringify(chinchillaFitJson(report))}\n` : formatChinchillaFitReport(report),
  );
  return 0;
}

/** A Chinchilla fit of a CSV names the N column and exactly one of the D and FLOPs columns. */
function chinchillaColumns(values: Values): ChinchillaColumns {
  const n = values['n-col'];
  if (n === undefined) throw new InterleaveError('--law chinchilla on a CSV needs --n-col <column>');
  if ((values['d-col'] === undefined) === (values['flops-col'] === undefined)) {
    throw new InterleaveError('--law chinchilla on a CSV needs --d-col <column> or --flops-col <column> (one of them)');
  }
  return { n, d: values['d-col'], flops: values['flops-col'], loss: values['loss-col'] ?? 'loss' };
}

async function fitComputeLaws(values: Values, source: FitSource, settings: FitSettings): Promise<number> {
  const report = await fitComputeLawSource(source, settings, {
    columns: {
      compute: values['compute-col'] ?? 'compute',
      loss: values['loss-col'] ?? 'loss',
      group: values['group-col'],
    },
    lossMetric: values['loss-metric'],
    onSkipped: reportSkipped,
    onTooFewPoints: (group, points) =>
      process.stderr.write(
        `interleave: not fitting '${group}': ${points} points, a compute-law fit needs at least ${COMPUTE_LAW_MIN_POINTS}\n`,
      ),
  });
  process.stdout.write(values.json ? `${JSON.stringify(computeLawJson(report))}\n` : formatComputeLawReport(report));
  return 0;
}

/** A `.csv` name or an existing file is read as a CSV; anything else names an experiment. */
function isCsv(target: string): boolean {
  if (/\.csv$/i.test(target)) return true;
  return existsSync(target) && statSync(target).isFile();
}

/** Flags for the other kind of input would be silently ignored; say so instead. */
function checkFlagsApply(values: Values, source: FitSource): void {
  const csvOnly = ['n-col', 'd-col', 'flops-col', 'loss-col', 'compute-col', 'group-col'] as const;
  const experimentOnly = ['uri', 'loss-metric'] as const;
  const wrong =
    source.kind === 'csv'
      ? experimentOnly.find((flag) => values[flag] !== undefined)
      : csvOnly.find((flag) => values[flag] !== undefined);
  if (wrong !== undefined) {
    throw new InterleaveError(
      `--${wrong} applies to ${source.kind === 'csv' ? 'MLflow experiments' : 'CSV files'}, not to ${describeFitSource(source)}`,
    );
  }
}

function reportSkipped(run: SkippedRun): void {
  process.stderr.write(`interleave: skipping run ${run.runName || run.runId}: ${run.reason}\n`);
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
