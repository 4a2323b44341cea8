import * as tf from '@tensorflow/tfjs';
import { InterleaveError } from '../errors.js';
import type { SeededRandom } from '../random/seeded-random.js';

/** Fills a parameter of `shape` (row-major) from the run's seeded generator. */
export type Initializer = (rng: SeededRandom, shape: readonly number[]) => Float32Array;

export interface ParameterOptions {
  /** Decoupled weight decay applies; default: true for matrices, false for vectors. */
  decay?: boolean;
}

export interface NamedParameter {
  /** PyTorch-style, e.g. `layers.0.mixer.in_proj.weight`. */
  readonly name: string;
  readonly variable: tf.Variable;
  readonly decay: boolean;
}

/** Creates parameters under a name prefix, e.g. `layers.3.mixer.`. */
export interface ParameterScope {
  readonly prefix: string;
  create(name: string, shape: number[], init: Initializer, options?: ParameterOptions): tf.Variable;
  scope(name: string): ParameterScope;
}

/** Every trainable parameter of a model, in creation order. */
export class ParameterStore {
  private readonly entries: NamedParameter[] = [];
  private readonly names = new Set<string>();

  constructor(private readonly rng: SeededRandom) {}

  root(): ParameterScope {
    return this.scopeAt('');
  }

  list(): readonly NamedParameter[] {
    return this.entries;
  }

  get(name: string): NamedParameter | undefined {
    return this.entries.find((entry) => entry.name === name);
  }

  count(): number {
    return this.entries.reduce((sum, entry) => sum + entry.variable.size, 0);
  }

  dispose(): void {
    for (const entry of this.entries) entry.variable.dispose();
    this.entries.length = 0;
    this.names.clear();
  }

  private scopeAt(prefix: string): ParameterScope {
    return {
      prefix,
      create: (name, shape, init, options) => this.create(prefix + name, shape, init, options),
      scope: (name) => this.scopeAt(`${prefix}${name}.`),
    };
  }

  private create(name: string, shape: number[], init: Initializer, options?: ParameterOptions): tf.Variable {
    if (this.names.has(name)) throw new InterleaveError(`parameter '${name}' is created twice`);
    // Each parameter draws from its own stream, so adding a layer does not reshuffle the others.
    const values = init(this.rng.fork(name), shape);
    const expected = shape.reduce((a, b) => a * b, 1);
    if (values.length !== expected) {
      throw new InterleaveError(
        `initializer for '${name}' gave ${values.length} values, shape [${shape}] needs ${expected}`,
      );
    }
    // tfjs variable names must be unique per process; ours live in `entries` instead.
    const initial = tf.tensor(values, shape, 'float32');
    const variable = tf.variable(initial, true);
    initial.dispose();
    this.names.add(name);
    this.entries.push({ name, variable, decay: options?.decay ?? shape.length >= 2 });
    return variable;
  }
}
