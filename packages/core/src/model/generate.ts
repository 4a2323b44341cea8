import * as tf from '@tensorflow/tfjs';
import { InterleaveError } from '../errors.js';
import { SeededRandom } from '../random/seeded-random.js';
import type { LanguageModel, ModelState } from './language-model.js';

export interface GenerationOptions {
  maxNewTokens: number;
  /** 0 (default) takes the most likely token; above 0 samples from softmax(logits / temperature). */
  temperature?: number;
  seed?: number;
  /** Called after every step (prompt and generated tokens alike), e.g. to watch memory. */
  onStep?: (info: { position: number; memoryBytes: number; tensors: number }) => void;
}

export interface Generation {
  /** Prompt followed by the generated tokens, per sequence. */
  readonly tokens: number[][];
  /** Milliseconds per generated token. */
  readonly stepMilliseconds: number[];
}

/**
 * Continues each prompt with the model's recurrent form: the prompt is fed token by token
 * through `step` and every new token costs one `step`, so memory is whatever the mixers' states
 * hold — constant for Mamba, RG-LRU and sliding windows, growing for full attention and Hyena.
 * All prompts must have the same length.
 */
export async function generate(
  model: LanguageModel,
  prompts: readonly number[][],
  options: GenerationOptions,
): Promise<Generation> {
  const batch = prompts.length;
  const promptLength = prompts[0]?.length ?? 0;
  if (batch === 0 || promptLength === 0) throw new InterleaveError('generation needs at least one non-empty prompt');
  if (prompts.some((prompt) => prompt.length !== promptLength)) {
    throw new InterleaveError('all prompts must have the same length');
  }
  const vocab = model.config.vocab_size;
  for (const token of prompts.flat()) {
    if (!Number.isInteger(token) || token < 0 || token >= vocab) {
      throw new InterleaveError(`prompt token ${token} is outside the vocabulary [0, ${vocab})`);
    }
  }
  const rng = new SeededRandom(options.seed ?? 0, 'generate');
  const temperature = options.temperature ?? 0;
  const tokens = prompts.map((prompt) => [...prompt]);
  const stepMilliseconds: number[] = [];
  let state: ModelState = model.initState(batch);
  let next = prompts.map((prompt) => prompt[0] as number);
  const total = promptLength + options.maxNewTokens;
  try {
    for (let position = 0; position < total - 1; position++) {
      const started = performance.now();
      const input = tf.tensor1d(next, 'int32');
      const { logits, state: after } = model.step(input, state);
      input.dispose();
      tf.dispose(state as unknown as tf.TensorContainer);
      state = after;
      // Asynchronous read: webgpu in Node cannot read back synchronously.
      const rows = (await logits.array()) as number[][];
      logits.dispose();
      if (position + 1 < promptLength) {
        next = prompts.map((prompt) => prompt[position + 1] as number);
      } else {
        next = rows.map((row) => pickToken(row, temperature, rng));
        for (const [index, token] of next.entries()) tokens[index]?.push(token);
        stepMilliseconds.push(performance.now() - started);
      }
      const memory = tf.memory();
      options.onStep?.({ position, memoryBytes: memory.numBytes, tensors: memory.numTensors });
    }
  } finally {
    tf.dispose(state as unknown as tf.TensorContainer);
  }
  return { tokens, stepMilliseconds };
}

function pickToken(logits: number[], temperature: number, rng: SeededRandom): number {
  if (temperature <= 0)
    return logits.reduce((best, value, index) => (value > (logits[best] as number) ? index : best), 0);
  const max = Math.max(...logits);
  const weights = logits.map((value) => Math.exp((value - max) / temperature));
  let threshold = rng.next() * weights.reduce((a, b) => a + b, 0);
  for (let index = 0; index < weights.length; index++) {
    threshold -= weights[index] as number;
    if (threshold <= 0) return index;
  }
  return weights.length - 1;
}
