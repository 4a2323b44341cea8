import {
  type BlockContext,
  type BlockDefinition,
  capabilitiesOf,
  type Mixer,
  ParameterStore,
  SeededRandom,
} from '@interleave/core';
import * as tf from '@tensorflow/tfjs';
import { z } from 'zod';
import { BlockContractError } from './shared.js';

export interface BuildOptions {
  readonly dModel: number;
  /** Seeds parameter init and the block's own generator; default 0. */
  readonly seed?: number;
  /** The parameter scope, default `mixer` (parameters are then named `mixer.<name>`). */
  readonly scope?: string;
}

/** A block built outside a model, for tests. `dispose()` frees its parameters. */
export interface BuiltBlock<Config = unknown> {
  readonly definition: BlockDefinition<Config>;
  /** The config after `definition.schema` filled in its defaults. */
  readonly config: Config;
  readonly dModel: number;
  readonly mixer: Mixer;
  readonly store: ParameterStore;
  readonly context: BlockContext;
  dispose(): void;
}

/**
 * Parses `rawConfig` (the block's keys of a layer entry, as in YAML: `{ d_state: 8 }`) with the
 * block's schema, then creates the mixer on the current tfjs backend with a fresh parameter store.
 */
export function buildBlockForTest<Config>(
  definition: BlockDefinition<Config>,
  rawConfig: unknown,
  options: BuildOptions,
): BuiltBlock<Config> {
  const seed = options.seed ?? 0;
  const parsed = definition.schema.safeParse(rawConfig ?? {});
  if (!parsed.success) {
    throw new BlockContractError(
      `config for block '${definition.name}' does not match its schema:\n${z.prettifyError(parsed.error)}`,
    );
  }
  const config = parsed.data;
  const store = new ParameterStore(new SeededRandom(seed));
  const context: BlockContext = {
    dModel: options.dModel,
    params: store.root().scope(options.scope ?? 'mixer'),
    rng: new SeededRandom(seed, `block/${definition.name}`),
    backend: capabilitiesOf(tf.getBackend()),
  };
  let mixer: Mixer;
  try {
    mixer = definition.create(context, config);
  } catch (error) {
    store.dispose();
    throw error;
  }
  return {
    definition,
    config,
    dModel: options.dModel,
    mixer,
    store,
    context,
    dispose: () => store.dispose(),
  };
}
