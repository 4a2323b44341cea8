import { InterleaveError } from '../errors.js';

/**
 * A CPU computation that turns one of a step's input arrays into arrays the GPU reads (the
 * embedding gradient's sort of the token ids), named so that a thread other than the one replaying
 * the step can run it: a recorded step (webgpu-step-replay.ts) declares its derived uploads by
 * `UploadDerivation`, and a trainer's batch worker computes them with each batch.
 */
export interface UploadDerivation {
  /** A name registered with `registerUploadDerivation`. */
  readonly name: string;
  /** Plain numbers only: the derivation is sent to worker threads. */
  readonly params: Readonly<Record<string, number>>;
}

type Derive = (source: ArrayLike<number>, params: Readonly<Record<string, number>>) => ArrayBufferView[];

const derivations = new Map<string, Derive>();

/** Makes `name` runnable by `deriveUpload` in every thread that imports the registering module. */
export function registerUploadDerivation(name: string, derive: Derive): void {
  derivations.set(name, derive);
}

/** The arrays `derivation` computes from `source`. */
export function deriveUpload(derivation: UploadDerivation, source: ArrayLike<number>): ArrayBufferView[] {
  const derive = derivations.get(derivation.name);
  if (derive === undefined) throw new InterleaveError(`no upload derivation named '${derivation.name}'`);
  return derive(source, derivation.params);
}

/** A key that is equal for equal lists of derivations (what a batch's precomputed uploads were made for). */
export function derivationsKey(
  list: readonly { readonly input: number; readonly derivation: UploadDerivation }[],
): string {
  return JSON.stringify(list.map(({ input, derivation }) => [input, derivation.name, derivation.params]));
}
