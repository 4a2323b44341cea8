import { capabilitiesOf, InterleaveError, LanguageModel, SeededRandom, selectBackend } from '@interleave/core';
import { type ModelSummary, summarizeModel } from '../../inspect/model-summary.js';
import { prepareRun } from '../../run/prepare-run.js';
import { type Command, parseCommandLine } from '../command.js';

export const inspectCommand: Command = {
  name: 'inspect',
  usage: `  inspect <config.yaml> [--json] [--set key=value ...]
      build the config's model (no training) and print, per layer and in total, its parameters,
      FLOPs per training token and recurrent state bytes per sequence, at the task's seq_len
      (states that grow with the sequence — full attention, Hyena — are marked and sized there)
      --json             one JSON object instead of the table
      --set key=value    override a config key first (e.g. --set model.d_model=256)`,
  async run(args) {
    const { values, positionals } = parseCommandLine(args, {
      json: { type: 'boolean', default: false },
      set: { type: 'string', multiple: true },
    });
    if (positionals.length !== 1)
      throw new InterleaveError('inspect takes one config: interleave inspect <config.yaml>');
    const configFile = positionals[0] as string;
    const prepared = await prepareRun(configFile, values.set ?? []);
    const { config } = prepared.loaded;
    // Building only draws the initial weights; the pure-JS backend starts at once and has every kernel.
    const backend = await selectBackend('cpu');
    const model = LanguageModel.build({
      container: prepared.container,
      config: config.model,
      layers: prepared.layers,
      rng: new SeededRandom(config.seed),
      backend: capabilitiesOf(backend.name),
    });
    try {
      const task = prepared.task.definition.create(prepared.task.config, {
        vocabSize: config.model.vocab_size,
        seed: config.seed,
      });
      const summary = summarizeModel(model, task.seqLen);
      if (model.parameters.count() !== summary.total.parameters) {
        throw new InterleaveError('inspect: the per-part parameter counts do not add up to the model (a bug)');
      }
      const output = values.json
        ? `${JSON.stringify({ config: configFile, name: config.name, task: task.description, ...summary }, null, 2)}\n`
        : formatSummary(configFile, task.description, summary);
      process.stdout.write(output);
      return 0;
    } finally {
      model.dispose();
    }
  },
};

/** 1536 → `1.50 KiB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(2)} ${units[unit]}`;
}

function formatFlopCount(flops: number): string {
  return flops >= 1e6 ? `${(flops / 1e6).toFixed(2)} M` : flops >= 1e3 ? `${(flops / 1e3).toFixed(2)} k` : `${flops}`;
}

function formatSummary(file: string, task: string, summary: ModelSummary): string {
  const grows = (flag: boolean) => (flag ? ` (grows; at ${summary.seqLen} tokens)` : '');
  const header = ['layer', 'block', 'parameters', 'FLOPs/token (fwd+bwd)', 'state/sequence'];
  const rows: string[][] = [
    ...summary.layers.map((layer) => [
      String(layer.index),
      layer.block,
      layer.parameters.toLocaleString('en-US'),
      formatFlopCount(layer.flops.total),
      `${formatBytes(layer.stateBytes)}${grows(layer.stateGrowsWithLength)}`,
    ]),
    ...summary.parts.map((part) => [
      '',
      part.name,
      part.parameters.toLocaleString('en-US'),
      formatFlopCount(part.flops.total),
      '',
    ]),
    [
      'total',
      '',
      summary.total.parameters.toLocaleString('en-US'),
      formatFlopCount(summary.total.flops.total),
      `${formatBytes(summary.total.stateBytes)}${grows(summary.total.stateGrowsWithLength)}`,
    ],
  ];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]?.length ?? 0)));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (column < 2 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0)))
      .join('  ')
      .trimEnd();
  return [
    `${file}: ${task}; FLOPs and growing states at seq_len ${summary.seqLen}; state in float32 bytes per sequence`,
    line(header),
    ...rows.map(line),
    '',
  ].join('\n');
}
