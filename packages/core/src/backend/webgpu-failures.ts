import { InterleaveError } from '../errors.js';
import { webgpuMemory } from './webgpu-memory.js';

/**
 * WebGPU reports validation errors, out-of-memory and device loss out of band: the op that
 * caused one returns normally, its buffers are invalid, and every later op quietly computes
 * garbage (NaN losses, a "final accuracy" of nothing). This watches the device tfjs-webgpu uses,
 * records the first failure with the tfjs program that was being recorded when it happened,
 * and lets the trainer throw it at the next step boundary: checking costs nothing on the happy
 * path.
 */

/** The part of tfjs-webgpu's backend object this needs. */
interface WebgpuBackendLike {
  readonly device: GPUDevice;
  runWebGPUProgram(program: ProgramLike, inputs: readonly TensorInfoLike[], ...rest: unknown[]): unknown;
}
interface ProgramLike {
  readonly constructor: { readonly name: string };
  readonly outputShape?: readonly number[];
}
interface TensorInfoLike {
  readonly shape: readonly number[];
  readonly dtype: string;
}

interface Failure {
  readonly what: string;
  readonly operation: string;
  later: number;
}

let failure: Failure | undefined;
let running: { program: ProgramLike; inputs: readonly TensorInfoLike[] } | undefined;
const watched = new WeakSet<object>();

/** Starts watching tfjs-webgpu's device (idempotent). `backend` is `tf.findBackend('webgpu')`. */
export function watchWebgpuFailures(backend: unknown): void {
  const target = backend as WebgpuBackendLike;
  if (watched.has(target)) return;
  watched.add(target);
  const { device } = target;
  device.addEventListener('uncapturederror', (event) => {
    // Handled here: Dawn would otherwise print it to stdout, once per op of the cascade.
    event.preventDefault();
    const { error } = event as GPUUncapturedErrorEvent;
    // Out of memory: how much was already held says whether the model or a leak is at fault.
    const held = error.constructor.name === 'GPUOutOfMemoryError' ? heldBytes() : '';
    record(`${error.constructor.name}: ${firstLines(error.message)}${held}`);
  });
  void device.lost.then((info) => {
    if (info.reason !== 'destroyed') record(`the GPU device was lost (${info.reason}): ${firstLines(info.message)}`);
  });
  // Dawn reports an error while the call that caused it runs; remembering the program being
  // recorded names the operation and its sizes without any per-op cost beyond two assignments.
  const run = target.runWebGPUProgram.bind(target);
  target.runWebGPUProgram = (program, inputs, ...rest) => {
    running = { program, inputs };
    try {
      return run(program, inputs, ...rest);
    } finally {
      running = undefined;
    }
  };
}

/**
 * Throws the first GPU failure since the last check, as one line: what failed, in which tfjs
 * program with which shapes, during what (`training step 12`). A no-op when none happened.
 */
export function throwIfWebgpuFailed(during: string): void {
  const failed = takeWebgpuFailure(during);
  if (failed !== undefined) throw failed;
}

/**
 * The first GPU failure since the last check as the error `throwIfWebgpuFailed` would throw, or
 * undefined; for a caller that already holds another error (e.g. a read-back that rejected with
 * an empty message because the device ran out of memory) and must report the cause instead.
 */
export function takeWebgpuFailure(during: string): InterleaveError | undefined {
  const found = failure;
  if (found === undefined) return undefined;
  failure = undefined;
  const after = found.later > 0 ? ` (and ${found.later} more GPU error${found.later === 1 ? '' : 's'} after it)` : '';
  return new InterleaveError(`webgpu failed during ${during}, in ${found.operation}: ${found.what}${after}`);
}

function record(what: string): void {
  if (failure !== undefined) {
    failure.later += 1;
    return;
  }
  failure = { what, operation: describeRunning(), later: 0 };
}

function describeRunning(): string {
  if (running === undefined) return 'no tfjs program (a buffer upload, read-back or submit)';
  const { program, inputs } = running;
  const shapes = inputs.map((input) => `[${input.shape.join(',')}] ${input.dtype}`).join(', ');
  const output = program.outputShape === undefined ? '' : ` → [${program.outputShape.join(',')}]`;
  return `${program.constructor.name} (${shapes || 'no inputs'}${output})`;
}

function heldBytes(): string {
  const memory = webgpuMemory();
  return memory === undefined ? '' : ` with ${(memory.liveBytes / 2 ** 30).toFixed(1)} GiB already held in GPU buffers`;
}

/** Dawn's message on one line: no native source locations, no `- While ...` context but the call. */
function firstLines(message: string): string {
  const lines = message.split('\n').map((line) => line.replace(/\s+at \S+ \([^)]*:\d+\)/g, '').trim());
  const context = lines.find((line) => line.startsWith('- While calling'));
  const main = lines.filter((line) => line !== '' && !line.startsWith('- ')).join(' ');
  // `- While calling [Device].CreateBindGroup([BindGroupDescriptor ""])`: the call, not its descriptor.
  return context === undefined ? main : `${main} (${context.slice(2).replace(/\(.*$/, '')})`;
}
