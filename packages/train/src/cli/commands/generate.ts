import { backendFromEnvironment, generate, InterleaveError, selectBackend } from '@interleave/core';
import { loadModelFromCheckpoint } from '../../checkpoint/load-model.js';
import { resolveCheckpointTarget } from '../../checkpoint/run-checkpoint.js';
import { type Command, parseCommandLine } from '../command.js';

export const generateCommand: Command = {
  name: 'generate',
  usage: `  generate <run-id|run-dir|checkpoint-dir|model.safetensors> --prompt-tokens 1,2,3 --max-new N
      continue a prompt with a trained model in step (recurrent) mode and print the tokens
      --prompt-tokens T,T,...  the prompt as token ids (repeat the flag for a batch of equal length)
      --max-new N              tokens to generate (default 32)
      --temperature X          0 = greedy (default); above 0 samples from softmax(logits / X)
      --seed S                 sampling seed (default 0)
      --config FILE            the config to build the model from, for weights that record none
      --uri URI                the MLflow store (path or http(s)://) of a run id (default ./mlruns)
      --stats                  also print ms/token and tfjs memory at the start and the end`,
  async run(args) {
    const { values, positionals } = parseCommandLine(args, {
      'prompt-tokens': { type: 'string', multiple: true },
      'max-new': { type: 'string', default: '32' },
      temperature: { type: 'string', default: '0' },
      seed: { type: 'string', default: '0' },
      config: { type: 'string' },
      uri: { type: 'string', default: './mlruns' },
      stats: { type: 'boolean', default: false },
    });
    if (positionals.length !== 1)
      throw new InterleaveError('generate takes one checkpoint: interleave generate <run-dir>');
    const prompts = (values['prompt-tokens'] ?? []).map(parseTokens);
    if (prompts.length === 0) throw new InterleaveError('--prompt-tokens is required, e.g. --prompt-tokens 1,2,3');
    const maxNewTokens = parseNumber('--max-new', values['max-new'], Number.isInteger);
    const temperature = parseNumber('--temperature', values.temperature, (v) => v >= 0);
    const seed = parseNumber('--seed', values.seed, Number.isInteger);

    await selectBackend(backendFromEnvironment() ?? 'auto', 'INTERLEAVE_BACKEND');
    const target = await resolveCheckpointTarget(positionals[0] as string, values.uri as string);
    const { model } = await loadModelFromCheckpoint(target.path, { config: values.config }).finally(() =>
      target.dispose(),
    );
    try {
      const memory: number[] = [];
      const result = await generate(model, prompts, {
        maxNewTokens,
        temperature,
        seed,
        onStep: ({ memoryBytes }) => memory.push(memoryBytes),
      });
      for (const tokens of result.tokens) process.stdout.write(`${tokens.join(' ')}\n`);
      if (values.stats) {
        const times = result.stepMilliseconds;
        const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);
        process.stderr.write(
          `${times.length} tokens, ${mean(times).toFixed(2)} ms/token; tfjs memory ${memory[0]} bytes after the first step, ${memory.at(-1)} after the last\n`,
        );
      }
      return 0;
    } finally {
      model.dispose();
    }
  },
};

function parseTokens(text: string): number[] {
  const tokens = text
    .split(/[\s,]+/)
    .filter(Boolean)
    .map(Number);
  if (tokens.length === 0 || tokens.some((token) => !Number.isInteger(token) || token < 0)) {
    throw new InterleaveError(`--prompt-tokens '${text}' must be comma-separated token ids, e.g. 1,2,3`);
  }
  return tokens;
}

function parseNumber(flag: string, text: string | undefined, valid: (value: number) => boolean): number {
  const value = Number(text);
  if (text === undefined || text.trim() === '' || !Number.isFinite(value) || !valid(value)) {
    throw new InterleaveError(`${flag} '${text}' is not a valid value`);
  }
  return value;
}
