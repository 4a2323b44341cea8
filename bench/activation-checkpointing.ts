import { parseArgs } from 'node:util';
import {
  ACTIVATION_CHECKPOINTING,
  type ActivationCheckpointing,
  type BackendRequest,
  capabilitiesOf,
  InterleaveError,
  LanguageModel,
  SeededRandom,
  selectBackend,
} from '@interleave/core';
import { prepareRun, Trainer } from '@interleave/train';
import * as tf from '@tensorflow/tfjs';
import { median } from './measure/timing.js';

const USAGE = `usage: npx tsx bench/activation-checkpointing.ts <config.yaml> [options]
  --backend <name>    tfjs backend (default auto)
  --steps <n>         timed training steps per setting, after 2 untimed ones (default 5)
  --set key=value     a config override, as for 'interleave train' (repeatable)
Trains the config's model from its seed once per train.activation_checkpointing setting and
prints, per setting, tokens/s (median step), the tensor bytes held between steps (parameters and
AdamW moments), the peak tensor bytes during one step above them (tf.profile), and the losses.`;

interface SettingResult {
  readonly setting: ActivationCheckpointing;
  readonly tokensPerSecond: number;
  readonly heldBytes: number;
  readonly stepPeakBytes: number;
  readonly losses: readonly number[];
}

/** One setting on a fresh model: step 1 creates the optimizer's moments, step 2 is profiled, the rest are timed. */
async function measureSetting(
  configFile: string,
  overrides: readonly string[],
  setting: ActivationCheckpointing,
  timedSteps: number,
): Promise<SettingResult> {
  const { loaded, container, layers, task } = await prepareRun(configFile, [
    ...overrides,
    `train.activation_checkpointing=${setting}`,
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
  try {
    const losses = [(await trainer.trainStep()).loss];
    const heldBytes = tf.memory().numBytes;
    const profile = await tf.profile(async () => {
      losses.push((await trainer.trainStep()).loss);
    });
    const samplesMs: number[] = [];
    let tokens = 0;
    for (let step = 0; step < timedSteps; step++) {
      const started = performance.now();
      const metrics = await trainer.trainStep();
      samplesMs.push(performance.now() - started);
      losses.push(metrics.loss);
      tokens = metrics.tokens;
    }
    return {
      setting,
      tokensPerSecond: tokens / (median(samplesMs) / 1000),
      heldBytes,
      stepPeakBytes: profile.peakBytes - heldBytes,
      losses,
    };
  } finally {
    trainer.dispose();
    model.dispose();
  }
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    options: {
      backend: { type: 'string', default: 'auto' },
      steps: { type: 'string', default: '5' },
      set: { type: 'string', multiple: true, default: [] },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: true,
  });
  const [configFile] = positionals;
  if (values.help || configFile === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const steps = Number(values.steps);
  if (!Number.isInteger(steps) || steps < 1)
    throw new InterleaveError(`--steps: expected a positive integer, got '${values.steps}'`);
  const backend = await selectBackend(values.backend as BackendRequest);
  process.stderr.write(`backend: ${backend.name} (${backend.detail})\n`);
  const results: SettingResult[] = [];
  for (const setting of ACTIVATION_CHECKPOINTING) {
    process.stderr.write(`activation_checkpointing: ${setting}\n`);
    results.push(await measureSetting(configFile, values.set, setting, steps));
  }
  process.stdout.write(
    '| activation_checkpointing | tokens/s | held between steps MiB | step peak above that MiB | losses |\n| --- | --- | --- | --- | --- |\n',
  );
  for (const result of results) {
    const losses = result.losses.map((loss) => loss.toFixed(6)).join(', ');
    process.stdout.write(
      `| ${result.setting} | ${result.tokensPerSecond.toFixed(0)} | ${mib(result.heldBytes)} | ${mib(result.stepPeakBytes)} | ${losses} |\n`,
    );
  }
}

try {
  await main();
  process.exit(0);
} catch (error) {
  const known = error instanceof InterleaveError;
  process.stderr.write(`activation-checkpointing: ${known ? error.message : ((error as Error).stack ?? error)}\n`);
  process.exit(1);
}
