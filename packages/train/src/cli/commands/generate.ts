import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { backendFromEnvironment, generate, InterleaveError, registryOf, selectBackend } from '@interleave/core';
import { createTokenizer, requireTokenIds, type TextTokenizer, TOKENIZERS } from '@interleave/eval';
import { METADATA_KEYS } from '../../checkpoint/checkpoint.js';
import { loadModelFromCheckpoint } from '../../checkpoint/load-model.js';
import type { ModelBlueprint } from '../../checkpoint/model-blueprint.js';
import { resolveCheckpointTarget } from '../../checkpoint/run-checkpoint.js';
import { type Command, parseCommandLine } from '../command.js';

export const generateCommand: Command = {
  name: 'generate',
  usage: `  generate <run-id|run-dir|checkpoint-dir|model.safetensors> --prompt "text" | --prompt-tokens 1,2,3 --max-new N
      continue a prompt with a trained model in step (recurrent) mode and print the text (or tokens)
      --prompt TEXT            the prompt as text, encoded and decoded with the run's tokenizer
                               (an lm run's task.tokenizer); prints the prompt and its continuation
      --prompt-file FILE       the prompt as text, read from FILE
      --tokenizer NAME         the tokenizer for --prompt, instead of the run's (byte, gpt2, ...)
      --prompt-tokens T,T,...  the prompt as token ids (repeat the flag for a batch of equal length)
      --max-new N              tokens to generate (default 32)
      --temperature X          0 = greedy (default); above 0 samples from softmax(logits / X)
      --seed S                 sampling seed (default 0)
      --config FILE            the config to build the model from, for weights that record none
      --uri URI                the MLflow store (folder or http(s) server) in which to look up a run id (default ./mlruns)
      --stats                  also print ms/token and tfjs memory at the start and the end`,
  async run(args) {
    const { values, positionals } = parseCommandLine(args, {
      prompt: { type: 'string' },
      'prompt-file': { type: 'string' },
      tokenizer: { type: 'string' },
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
    const promptText = readPromptText(values.prompt, values['prompt-file']);
    const prompts = (values['prompt-tokens'] ?? []).map(parseTokens);
    if (promptText !== undefined && prompts.length > 0) {
      throw new InterleaveError('give the prompt as text (--prompt, --prompt-file) or as --prompt-tokens, not both');
    }
    if (promptText === undefined && prompts.length === 0) {
      throw new InterleaveError('a prompt is required: --prompt "text", --prompt-file FILE or --prompt-tokens 1,2,3');
    }
    const maxNewTokens = parseNumber('--max-new', values['max-new'], Number.isInteger);
    const temperature = parseNumber('--temperature', values.temperature, (v) => v >= 0);
    const seed = parseNumber('--seed', values.seed, Number.isInteger);

    await selectBackend(backendFromEnvironment() ?? 'auto', 'INTERLEAVE_BACKEND');
    // A run id on a server is downloaded to a temporary folder: read the tokenizer from it too.
    const target = await resolveCheckpointTarget(positionals[0] as string, values.uri as string);
    let tokenizer: TextTokenizer | undefined;
    const { model, blueprint, weightsFile } = await loadModelFromCheckpoint(target.path, { config: values.config });
    try {
      try {
        tokenizer =
          promptText === undefined
            ? undefined
            : runTokenizer(blueprint, values.tokenizer, weightsFile, model.config.vocab_size);
      } finally {
        await target.dispose();
      }
      if (tokenizer !== undefined && promptText !== undefined) {
        const ids = tokenizer.encode(promptText);
        if (ids.length === 0) throw new InterleaveError('the prompt is empty: give at least one character');
        requireTokenIds(
          ids,
          { ...tokenizer, vocabSize: Math.min(tokenizer.vocabSize, model.config.vocab_size) },
          'the prompt',
        );
        prompts.push(ids);
      }
      const memory: number[] = [];
      const result = await generate(model, prompts, {
        maxNewTokens,
        temperature,
        seed,
        onStep: ({ memoryBytes }) => memory.push(memoryBytes),
      });
      for (const tokens of result.tokens) {
        process.stdout.write(tokenizer === undefined ? `${tokens.join(' ')}\n` : `${tokenizer.decode(tokens)}\n`);
      }
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

function readPromptText(prompt: string | undefined, promptFile: string | undefined): string | undefined {
  if (prompt !== undefined && promptFile !== undefined)
    throw new InterleaveError('give --prompt or --prompt-file, not both');
  if (promptFile === undefined) return prompt;
  try {
    return readFileSync(promptFile, 'utf8');
  } catch (error) {
    throw new InterleaveError(`--prompt-file ${promptFile}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}

/** `--tokenizer`, else the tokenizer of the task the model was trained on (an lm run's). */
function runTokenizer(
  blueprint: ModelBlueprint,
  override: string | undefined,
  weightsFile: string,
  vocabSize: number,
): TextTokenizer {
  const registry = registryOf(blueprint.container, TOKENIZERS);
  // A tokenizer learned from the corpus was saved in the run's artifacts, beside checkpoint/.
  const saved = [
    join(dirname(weightsFile), 'tokenizer.json'),
    join(dirname(dirname(weightsFile)), 'tokenizer.json'),
  ].find((file) => existsSync(file));
  const context = {
    corpusFiles: [],
    cacheDirectory: resolve('.interleave-cache'),
    vocabSize,
    ...(saved === undefined ? {} : { savedFile: saved }),
  };
  if (override !== undefined) return createTokenizer(registry, override, context);
  const recorded = blueprint.metadata[METADATA_KEYS.config];
  const task = recorded === undefined ? undefined : (JSON.parse(recorded) as { task?: Record<string, unknown> }).task;
  if (task?.name !== 'lm') {
    throw new InterleaveError(
      `the model was trained on ${task === undefined ? 'an unrecorded task' : `task '${String(task.name)}'`}, which has no tokenizer: ` +
        'pass --tokenizer NAME, or the prompt as --prompt-tokens',
    );
  }
  const name = typeof task.tokenizer === 'string' ? task.tokenizer : 'byte';
  if (name === 'bpe' && saved === undefined) {
    throw new InterleaveError(
      `the run's bpe tokenizer is not beside ${weightsFile} (no tokenizer.json in its artifacts)`,
    );
  }
  return createTokenizer(registry, name, context);
}

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
