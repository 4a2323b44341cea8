import * as tf from '@tensorflow/tfjs';
import { InterleaveError } from '../errors.js';
import { deriveUpload, type UploadDerivation } from './upload-derivations.js';
import { type PoolControl, type PooledBuffer, type PoolObserver, webgpuPoolControl } from './webgpu-buffer-pool.js';

/**
 * A training step recorded once at the Dawn level and replayed without tfjs.
 *
 * A small model's step on webgpu costs tfjs's CPU work per op (engine scopes, the gradient tape,
 * kernel lookup, shader keys, uniforms, bind groups), ~30–80 µs an op on the H200, against a few
 * µs for the dispatch itself (docs/gpu.md, "Per-op cost"). With static shapes a step issues the
 * same commands every time; only the data differs. So the step is run once through tfjs while
 * every `queue.writeBuffer`, compute dispatch (pipeline, bind group, workgroups), buffer copy and
 * submit is recorded, and later steps re-issue that list: the step's inputs written into the
 * buffers the recorded step read them from, everything else as recorded.
 *
 * What makes the list valid again on the next step:
 * - **State.** tfjs does not update a variable in place: the step reads parameters and moments
 *   from buffers B and writes the new values to fresh buffers A, and the variables then point to
 *   A. A replay reads B again, so each replay (and the recording) ends with copies A → B. B is
 *   kept out of tfjs's pool (it was the old value; tfjs released it during the step).
 * - **Inputs.** Whatever differs between steps must reach the GPU through a tensor the caller
 *   names (`inputs`: token ids, targets, mask, the optimiser's step scalars), or through an upload
 *   derived from one of them on the CPU and declared with `noteDerivedUpload` (the embedding
 *   gradient's sort of the token ids). Anything else that changed would be replayed stale, so a
 *   caller records two steps and keeps the plan only if they wrote the same bytes everywhere else
 *   (`differenceFrom`).
 * - **Buffers.** Every buffer a recorded command or write names is owned by the plan until it is
 *   disposed: kept out of the pool when tfjs releases it, taken out of the idle lists at the end,
 *   and never evicted. Buffers that held live tensors before the recording began are never
 *   reused during it (their release is held back), so no such buffer is both old state and
 *   something else.
 */

/** The WebGPU objects recorded, structurally. */
interface Buffer {
  readonly size: number;
  readonly usage: number;
}
interface Pipeline {
  readonly label?: string;
}
type BindGroup = object;

interface RecordedWrite {
  readonly buffer: Buffer;
  readonly offset: number;
  readonly bytes: Uint8Array;
}

interface RecordedDispatch {
  readonly pipeline: Pipeline;
  readonly groups: readonly (BindGroup | undefined)[];
  readonly workgroups: readonly [number, number, number];
}

type RecordedCommand =
  | { readonly kind: 'pass'; readonly dispatches: RecordedDispatch[] }
  | {
      readonly kind: 'copy';
      readonly source: Buffer;
      readonly sourceOffset: number;
      readonly target: Buffer;
      readonly targetOffset: number;
      readonly size: number;
    };

/** The commands of one submit, and the writes queued before it (the queue runs them first). */
interface Segment {
  readonly writes: RecordedWrite[];
  readonly commands: RecordedCommand[];
}

/** Where a replay takes a write's bytes from instead of the recording. */
type WriteSource =
  | { readonly kind: 'input'; readonly input: number }
  | { readonly kind: 'derived'; readonly group: number; readonly part: number };

interface DerivedGroup {
  readonly input: number;
  readonly derivation: UploadDerivation;
}

export interface StepRecordingSpec {
  /** Tensors whose contents change from step to step, in the order `replay` is given their values. */
  readonly inputs: readonly tf.Tensor[];
  /** Variables the step reassigns (parameters, optimiser moments). */
  readonly state: readonly tf.Variable[];
}

export interface RecordedStepResult<T> {
  /** What `run` returned. */
  readonly value: T;
  /** The replayable step, or undefined with `refusal` saying why not. */
  readonly plan: RecordedStep | undefined;
  readonly refusal: string | undefined;
}

/** The parts of tfjs-webgpu's backend object a recording needs. */
interface BackendInternals {
  device: GPUDevice;
  queue: GPUQueue;
  commandEncoder: unknown;
  tensorMap: { get(dataId: object): { resource?: unknown; values?: unknown } | undefined };
  uploadToGPU(dataId: object): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

/** The recording in progress, for `noteDerivedUpload`; at most one at a time. */
let active: Recorder | undefined;

/**
 * Declares that `uploaded` (tensors already on the GPU) hold data computed on the CPU from the
 * values of `source` by `derivation` (one array per uploaded tensor, same byte lengths). A step
 * being recorded then recomputes them from each replay's inputs (or takes them precomputed, see
 * `replay`); outside a recording this does nothing.
 */
export function noteDerivedUpload(
  source: tf.Tensor,
  uploaded: readonly tf.Tensor[],
  derivation: UploadDerivation,
): void {
  active?.noteDerived(source, uploaded, derivation);
}

/**
 * Runs `run` (one whole training step, through tfjs, for real) while recording its GPU commands.
 * `run` returns the step's value, the tensor a replay reads back (`output`, float32, alive until
 * the caller disposes it), and named tensors a replay can read on demand (`probes`, e.g. the
 * gradients when a norm is not finite).
 */
export function recordWebgpuStep<T>(
  spec: StepRecordingSpec,
  run: () => { value: T; output: tf.Tensor; probes?: Readonly<Record<string, tf.Tensor>> },
): RecordedStepResult<T> {
  const backend = tf.backend() as unknown as BackendInternals;
  const pool = webgpuPoolControl(backend);
  if (tf.getBackend() !== 'webgpu' || pool === undefined) {
    const { value } = run();
    return { value, plan: undefined, refusal: 'the backend is not webgpu with its pool limits' };
  }
  if (active !== undefined) throw new Error('a webgpu step is already being recorded');
  flush(backend);
  for (const tensor of [...spec.inputs, ...spec.state]) {
    if (tensor.dtype !== 'float32' && tensor.dtype !== 'int32') {
      const { value } = run();
      return { value, plan: undefined, refusal: `a ${tensor.dtype} step input` };
    }
  }
  for (const variable of spec.state) backend.uploadToGPU(variable.dataId);
  const stateBefore = spec.state.map((variable) => bufferOf(backend, variable));
  const recorder = new Recorder(backend, pool, spec);
  active = recorder;
  const cpuForward = tf.env().getBool('WEBGPU_CPU_FORWARD');
  // tfjs computes small ops on CPU-resident tensors on the CPU and uploads the result: such a
  // value would be replayed as a constant. With forwarding off every op of the step is a dispatch.
  tf.env().set('WEBGPU_CPU_FORWARD', false);
  let result: { value: T; output: tf.Tensor; probes?: Readonly<Record<string, tf.Tensor>> };
  try {
    recorder.start();
    result = run();
    flush(backend);
  } catch (error) {
    recorder.stop();
    recorder.abandon();
    throw error;
  } finally {
    active = undefined;
    tf.env().set('WEBGPU_CPU_FORWARD', cpuForward);
  }
  recorder.stop();
  const stateAfter = spec.state.map((variable) => bufferOf(backend, variable));
  const built = recorder.build(result.output, result.probes ?? {}, stateBefore, stateAfter);
  if (typeof built === 'string') {
    recorder.abandon();
    return { value: result.value, plan: undefined, refusal: built };
  }
  return { value: result.value, plan: built, refusal: undefined };
}

function flush(backend: BackendInternals): void {
  if (backend.commandEncoder == null) return;
  backend.endComputePassEncoder();
  backend.submitQueue();
}

function bufferOf(backend: BackendInternals, tensor: tf.Tensor): Buffer | undefined {
  const resource = backend.tensorMap.get(tensor.dataId)?.resource;
  return resource == null ? undefined : (resource as Buffer);
}

/** A copy of the bytes `writeBuffer` was given (its offsets count elements for typed arrays). */
function bytesOf(data: ArrayBuffer | ArrayBufferView | SharedArrayBuffer, dataOffset = 0, size?: number): Uint8Array {
  if (data instanceof ArrayBuffer || data instanceof SharedArrayBuffer) {
    const end = size === undefined ? data.byteLength : dataOffset + size;
    return new Uint8Array(data.slice(dataOffset, end));
  }
  const view = data as ArrayBufferView & { BYTES_PER_ELEMENT?: number };
  const unit = view.BYTES_PER_ELEMENT ?? 1;
  const start = view.byteOffset + dataOffset * unit;
  const length = size === undefined ? view.byteLength - dataOffset * unit : size * unit;
  return new Uint8Array(view.buffer.slice(start, start + length));
}

function asBytes(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** Replaces a method on one object for the length of a recording. */
function override<O extends object, K extends keyof O>(target: O, name: K, replacement: O[K]): () => void {
  const own = Object.getOwnPropertyDescriptor(target, name);
  Object.defineProperty(target, name, { value: replacement, configurable: true, writable: true });
  return () => {
    if (own === undefined) delete (target as Record<K, unknown>)[name];
    else Object.defineProperty(target, name, own);
  };
}

class Recorder implements PoolObserver {
  readonly segments: Segment[] = [{ writes: [], commands: [] }];
  /** Buffers named by each bind group created during the recording. */
  private readonly groupBuffers = new Map<BindGroup, Buffer[]>();
  /** Buffers acquired from the pool during the recording (new, or idle ones reused). */
  private readonly fresh = new Set<Buffer>();
  /** Releases held back: buffers that held live data before the recording. */
  private readonly heldBack: { buffer: PooledBuffer; reuse: boolean }[] = [];
  /** Fresh buffers tfjs destroyed during the recording (staging buffers of its own uploads). */
  private readonly destroyed = new Set<Buffer>();
  private readonly derived: DerivedGroup[] = [];
  private readonly writeSources = new Map<RecordedWrite, WriteSource>();
  private refusal: string | undefined;
  private restores: (() => void)[] = [];

  constructor(
    private readonly backend: BackendInternals,
    private readonly pool: PoolControl,
    private readonly spec: StepRecordingSpec,
  ) {}

  private get current(): Segment {
    return this.segments[this.segments.length - 1] as Segment;
  }

  acquired(buffer: PooledBuffer): void {
    this.fresh.add(buffer);
  }

  releasing(buffer: PooledBuffer, reuse: boolean): boolean {
    if (this.fresh.has(buffer)) {
      if (!reuse) this.destroyed.add(buffer);
      return false;
    }
    this.heldBack.push({ buffer, reuse });
    return true;
  }

  start(): void {
    const { device, queue } = this.backend;
    this.pool.observers.add(this);
    this.pool.evictionPaused = true;
    const createEncoder = device.createCommandEncoder.bind(device);
    const createBindGroup = device.createBindGroup.bind(device);
    const writeBuffer = queue.writeBuffer.bind(queue);
    const submit = queue.submit.bind(queue);
    this.restores = [
      override(device, 'createCommandEncoder', ((descriptor?: GPUCommandEncoderDescriptor) =>
        this.wrapEncoder(createEncoder(descriptor))) as GPUDevice['createCommandEncoder']),
      override(device, 'createBindGroup', ((descriptor: GPUBindGroupDescriptor) => {
        const group = createBindGroup(descriptor);
        const buffers: Buffer[] = [];
        for (const entry of descriptor.entries as Iterable<GPUBindGroupEntry>) {
          const resource = entry.resource as { buffer?: Buffer };
          if (resource.buffer !== undefined) buffers.push(resource.buffer);
          else this.refusal ??= 'a bind group with a resource other than a buffer';
        }
        this.groupBuffers.set(group, buffers);
        return group;
      }) as GPUDevice['createBindGroup']),
      override(queue, 'writeBuffer', ((
        buffer: GPUBuffer,
        offset: number,
        data: ArrayBuffer | ArrayBufferView,
        dataOffset?: number,
        size?: number,
      ) => {
        this.current.writes.push({ buffer, offset, bytes: bytesOf(data, dataOffset, size) });
        writeBuffer(buffer, offset, data as never, dataOffset, size);
      }) as GPUQueue['writeBuffer']),
      override(queue, 'submit', ((buffers: Iterable<GPUCommandBuffer>) => {
        submit(buffers);
        this.segments.push({ writes: [], commands: [] });
      }) as GPUQueue['submit']),
    ];
  }

  stop(): void {
    for (const restore of this.restores.reverse()) restore();
    this.restores = [];
    this.pool.observers.delete(this);
    this.pool.evictionPaused = false;
  }

  /** Gives back everything held (a failed or refused recording). */
  abandon(): void {
    for (const { buffer, reuse } of this.heldBack.splice(0)) this.pool.releaseKept(buffer, reuse);
  }

  private wrapEncoder(encoder: GPUCommandEncoder): GPUCommandEncoder {
    const recorder = this;
    return new Proxy(encoder, {
      get(target, name) {
        if (name === 'beginComputePass') {
          return (descriptor?: GPUComputePassDescriptor) => {
            if (descriptor?.timestampWrites !== undefined) recorder.refusal ??= 'a compute pass with timestamp queries';
            return recorder.wrapPass(target.beginComputePass(descriptor));
          };
        }
        if (name === 'copyBufferToBuffer') {
          return (
            source: GPUBuffer,
            sourceOffset: number,
            destination: GPUBuffer,
            targetOffset: number,
            size: number,
          ) => {
            recorder.current.commands.push({
              kind: 'copy',
              source,
              sourceOffset,
              target: destination,
              targetOffset,
              size,
            });
            target.copyBufferToBuffer(source, sourceOffset, destination, targetOffset, size);
          };
        }
        if (name === 'finish') return (descriptor?: GPUCommandBufferDescriptor) => target.finish(descriptor);
        recorder.refusal ??= `a command encoder's ${String(name)}`;
        const member = Reflect.get(target, name) as unknown;
        return typeof member === 'function' ? (member as (...a: unknown[]) => unknown).bind(target) : member;
      },
    });
  }

  private wrapPass(pass: GPUComputePassEncoder): GPUComputePassEncoder {
    const dispatches: RecordedDispatch[] = [];
    this.current.commands.push({ kind: 'pass', dispatches });
    let pipeline: Pipeline | undefined;
    const groups: (BindGroup | undefined)[] = [];
    const recorder = this;
    return new Proxy(pass, {
      get(target, name) {
        switch (name) {
          case 'setPipeline':
            return (next: GPUComputePipeline) => {
              pipeline = next;
              target.setPipeline(next);
            };
          case 'setBindGroup':
            return (index: number, group: GPUBindGroup, offsets?: Iterable<number>) => {
              if (offsets !== undefined && [...offsets].length > 0) recorder.refusal ??= 'dynamic bind-group offsets';
              groups[index] = group;
              target.setBindGroup(index, group);
            };
          case 'dispatchWorkgroups':
            return (x: number, y = 1, z = 1) => {
              if (pipeline === undefined) recorder.refusal ??= 'a dispatch without a pipeline';
              else dispatches.push({ pipeline, groups: [...groups], workgroups: [x, y, z] });
              target.dispatchWorkgroups(x, y, z);
            };
          case 'end':
            return () => target.end();
          default: {
            recorder.refusal ??= `a compute pass's ${String(name)}`;
            const member = Reflect.get(target, name) as unknown;
            return typeof member === 'function' ? (member as (...a: unknown[]) => unknown).bind(target) : member;
          }
        }
      },
    });
  }

  private lastWriteTo(buffer: Buffer): RecordedWrite | undefined {
    for (let s = this.segments.length - 1; s >= 0; s--) {
      const writes = (this.segments[s] as Segment).writes;
      for (let w = writes.length - 1; w >= 0; w--) if ((writes[w] as RecordedWrite).buffer === buffer) return writes[w];
    }
    return undefined;
  }

  noteDerived(source: tf.Tensor, uploaded: readonly tf.Tensor[], derivation: UploadDerivation): void {
    const input = this.spec.inputs.findIndex((tensor) => tensor.dataId === source.dataId);
    if (input < 0) {
      this.refusal ??= 'an upload derived from a tensor that is not a step input';
      return;
    }
    const group = this.derived.push({ input, derivation }) - 1;
    uploaded.forEach((tensor, part) => {
      this.backend.uploadToGPU(tensor.dataId);
      const buffer = bufferOf(this.backend, tensor);
      const write = buffer === undefined ? undefined : this.lastWriteTo(buffer);
      if (write === undefined) this.refusal ??= 'a derived upload that was not written through the queue';
      else this.writeSources.set(write, { kind: 'derived', group, part });
    });
  }

  build(
    output: tf.Tensor,
    probes: Readonly<Record<string, tf.Tensor>>,
    stateBefore: readonly (Buffer | undefined)[],
    stateAfter: readonly (Buffer | undefined)[],
  ): RecordedStep | string {
    if (this.refusal !== undefined) return `the step uses ${this.refusal}`;
    if (output.dtype !== 'float32') return 'the read-back tensor is not float32';
    for (const [index, tensor] of this.spec.inputs.entries()) {
      const buffer = bufferOf(this.backend, tensor);
      const write = buffer === undefined ? undefined : this.lastWriteTo(buffer);
      // An input never uploaded is never read on the GPU; nothing to write.
      if (write !== undefined) this.writeSources.set(write, { kind: 'input', input: index });
    }
    const copies: { source: Buffer; target: Buffer }[] = [];
    for (const [index, after] of stateAfter.entries()) {
      const before = stateBefore[index];
      if (after === undefined || before === undefined) return 'a state variable without a GPU buffer';
      if (after !== before) copies.push({ source: after, target: before });
    }
    const outputBuffer = bufferOf(this.backend, output);
    if (outputBuffer === undefined) return 'the read-back tensor has no GPU buffer';
    const probeBuffers = new Map<string, { buffer: Buffer; count: number }>();
    for (const [name, tensor] of Object.entries(probes)) {
      const buffer = bufferOf(this.backend, tensor);
      if (buffer !== undefined) probeBuffers.set(name, { buffer, count: tensor.size });
    }
    const owned = new Set<Buffer>([outputBuffer]);
    for (const segment of this.segments) {
      for (const write of segment.writes) owned.add(write.buffer);
      for (const command of segment.commands) {
        if (command.kind === 'copy') {
          owned.add(command.source);
          owned.add(command.target);
          continue;
        }
        for (const dispatch of command.dispatches) {
          for (const group of dispatch.groups)
            for (const buffer of this.groupBuffers.get(group ?? {}) ?? []) owned.add(buffer);
        }
      }
    }
    for (const { target } of copies) owned.add(target);
    for (const buffer of owned)
      if (this.destroyed.has(buffer)) return 'the step uploads through staging buffers it destroys';
    for (const { buffer } of probeBuffers.values()) owned.add(buffer);
    const kept: { buffer: PooledBuffer; reuse: boolean }[] = [];
    for (const entry of this.heldBack.splice(0)) {
      if (owned.has(entry.buffer)) kept.push(entry);
      else this.pool.releaseKept(entry.buffer, entry.reuse);
    }
    const claimed = this.pool.claimIdle(owned);
    const segments = this.segments.filter((segment) => segment.writes.length > 0 || segment.commands.length > 0);
    const plan = new RecordedStep(this.backend, this.pool, {
      segments,
      writeSources: this.writeSources,
      derived: this.derived,
      inputCount: this.spec.inputs.length,
      copies,
      outputBuffer,
      outputCount: output.size,
      probes: probeBuffers,
      owned,
      kept,
      claimed,
      state: this.spec.state,
      stateAfter: stateAfter as Buffer[],
    });
    plan.copyStateBack();
    return plan;
  }
}

interface PlanParts {
  segments: Segment[];
  writeSources: Map<RecordedWrite, WriteSource>;
  derived: DerivedGroup[];
  inputCount: number;
  copies: { source: Buffer; target: Buffer }[];
  outputBuffer: Buffer;
  outputCount: number;
  probes: Map<string, { buffer: Buffer; count: number }>;
  owned: Set<Buffer>;
  kept: { buffer: PooledBuffer; reuse: boolean }[];
  claimed: PooledBuffer[];
  state: readonly tf.Variable[];
  stateAfter: Buffer[];
}

/** One dispatch's GPU time in a recorded step (`RecordedStep.timeDispatches`). */
export interface DispatchTime {
  /** Its position among the step's dispatches. */
  readonly index: number;
  /** The compute pipeline's label: tfjs names a program's shader there. */
  readonly label: string;
  readonly workgroups: readonly [number, number, number];
  /** Milliseconds per run. */
  readonly ms: number;
}

/** Plans not yet disposed: a buffer one of them holds back may be owned by another too. */
const livePlans = new Set<RecordedStep>();

/** A recorded step: replay it with new inputs, read what it computed, dispose it to free its buffers. */
export class RecordedStep implements PoolObserver {
  /**
   * Two read-back buffers, used in turn, so that the next replay can be submitted while the last
   * one's values are still being read (a trainer overlapping its steps; see `replay`).
   */
  private readonly stagings: (GPUBuffer | undefined)[] = [undefined, undefined];
  private readonly reading = [false, false];
  private turn = 0;
  /** The next replay's command buffers (copying into staging buffer `turn`), encoded while the last one ran. */
  private encodedAhead: { turn: number; buffers: GPUCommandBuffer[] } | undefined;
  private disposed = false;

  constructor(
    private readonly backend: BackendInternals,
    private readonly pool: PoolControl,
    private readonly parts: PlanParts,
  ) {
    pool.observers.add(this);
    livePlans.add(this);
  }

  /** Whether this plan's commands name `buffer`. */
  owns(buffer: object): boolean {
    return this.parts.owned.has(buffer as Buffer);
  }

  /** Takes over a held-back buffer from a plan being disposed. */
  adopt(entry: { buffer: PooledBuffer; reuse: boolean }): void {
    this.parts.kept.push(entry);
  }

  /**
   * The uploads a replay derives from its inputs on the CPU, in order: which input each is
   * derived from and how. `replay`'s `precomputed[i]` stands for the i-th one's arrays.
   */
  get derivedUploads(): readonly { readonly input: number; readonly derivation: UploadDerivation }[] {
    return this.parts.derived;
  }

  /** Dispatches per replay (for reports). */
  get dispatchCount(): number {
    let count = 0;
    for (const segment of this.parts.segments) {
      for (const command of segment.commands) if (command.kind === 'pass') count += command.dispatches.length;
    }
    return count;
  }

  /** How many input values `replay` takes. */
  get inputCount(): number {
    return this.parts.inputCount;
  }

  get submitCount(): number {
    return this.parts.segments.length;
  }

  acquired(): void {}

  releasing(buffer: PooledBuffer, reuse: boolean): boolean {
    if (!this.parts.owned.has(buffer)) return false;
    this.parts.kept.push({ buffer, reuse });
    return true;
  }

  /**
   * Whether the state variables still hold the buffers this plan writes (a checkpoint restore or
   * any other assignment makes the plan stale).
   */
  stateIntact(): boolean {
    return this.parts.state.every((variable, i) => bufferOf(this.backend, variable) === this.parts.stateAfter[i]);
  }

  /**
   * Where this recording differs from `other` (an earlier recording of the same step at other
   * data), outside the declared inputs: undefined when a replay can be trusted.
   */
  differenceFrom(other: RecordedStep): string | undefined {
    const mine = this.parts.segments;
    const theirs = other.parts.segments;
    if (mine.length !== theirs.length) return `${mine.length} submits against ${theirs.length}`;
    for (const [s, segment] of mine.entries()) {
      const twin = theirs[s] as Segment;
      if (segment.writes.length !== twin.writes.length) return `submit ${s + 1} writes a different number of buffers`;
      for (const [w, write] of segment.writes.entries()) {
        const earlier = twin.writes[w] as RecordedWrite;
        const source = this.parts.writeSources.get(write);
        const earlierSource = other.parts.writeSources.get(earlier);
        if (JSON.stringify(source) !== JSON.stringify(earlierSource))
          return `write ${w + 1} of submit ${s + 1} is an input in one step only`;
        if (write.bytes.length !== earlier.bytes.length) return `write ${w + 1} of submit ${s + 1} changes size`;
        if (source === undefined && !sameBytes(write.bytes, earlier.bytes)) {
          return `write ${w + 1} of submit ${s + 1} (${write.bytes.length} bytes) changes between steps but is not a declared input`;
        }
      }
      if (segment.commands.length !== twin.commands.length)
        return `submit ${s + 1} records a different number of commands`;
      for (const [c, command] of segment.commands.entries()) {
        const earlier = twin.commands[c] as RecordedCommand;
        if (command.kind !== earlier.kind) return `command ${c + 1} of submit ${s + 1} differs`;
        if (command.kind === 'pass' && earlier.kind === 'pass') {
          if (command.dispatches.length !== earlier.dispatches.length)
            return `pass ${c + 1} of submit ${s + 1} differs`;
          for (const [d, dispatch] of command.dispatches.entries()) {
            const twinDispatch = earlier.dispatches[d] as RecordedDispatch;
            if (
              dispatch.pipeline !== twinDispatch.pipeline ||
              dispatch.workgroups.join() !== twinDispatch.workgroups.join()
            ) {
              return `dispatch ${d + 1} of pass ${c + 1} differs (${dispatch.pipeline.label ?? 'unlabelled'})`;
            }
          }
        }
      }
    }
    return undefined;
  }

  /**
   * Runs the step again with new input values (one per `spec.inputs`, same byte lengths) and
   * resolves to the read-back tensor's values. The state variables hold the step's new values after.
   * With `readBack` false nothing is read (an empty array): the GPU may still be running the step.
   * The work is submitted before the call returns, so the next replay may be called before this
   * one's values have come back (it runs after it on the GPU); at most two may be reading at once.
   * `precomputed[i]`, where given, are the arrays of `derivedUploads[i]` for these inputs, computed
   * elsewhere (a batch worker) with `deriveUpload`; the others are derived here.
   */
  async replay(
    inputs: readonly ArrayBufferView[],
    readBack = true,
    precomputed?: readonly (readonly ArrayBufferView[] | undefined)[],
  ): Promise<Float32Array> {
    if (this.disposed) throw new Error('replay of a disposed step');
    if (inputs.length !== this.parts.inputCount)
      throw new Error(`${inputs.length} inputs for ${this.parts.inputCount}`);
    const backend = this.backend;
    flush(backend);
    const derivedValues = this.parts.derived.map(
      (group, index) =>
        precomputed?.[index] ??
        deriveUpload(group.derivation, inputs[group.input] as ArrayBufferView & ArrayLike<number>),
    );
    const { queue } = backend;
    const turn = this.turn;
    if (readBack && this.reading[turn]) throw new Error('a third replay while two are still reading back');
    // Command buffers encoded while the previous replay ran on the GPU, where they can be used.
    const ahead = this.encodedAhead;
    const commandBuffers =
      readBack && ahead !== undefined && ahead.turn === turn ? ahead.buffers : this.encode(readBack, turn);
    this.encodedAhead = undefined;
    for (const [s, segment] of this.parts.segments.entries()) {
      for (const write of segment.writes) {
        const source = this.parts.writeSources.get(write);
        let bytes = write.bytes;
        if (source?.kind === 'input') bytes = asBytes(inputs[source.input] as ArrayBufferView);
        else if (source?.kind === 'derived')
          bytes = asBytes(derivedValues[source.group]?.[source.part] as ArrayBufferView);
        if (bytes.byteLength !== write.bytes.byteLength) {
          throw new InterleaveError(
            `a replayed step's input has ${bytes.byteLength} bytes where the recorded step had ${write.bytes.byteLength}`,
          );
        }
        queue.writeBuffer(write.buffer as GPUBuffer, write.offset, bytes);
      }
      queue.submit([commandBuffers[s] as GPUCommandBuffer]);
    }
    this.forgetCpuCopies();
    if (!readBack) return new Float32Array(0);
    this.turn = 1 - turn;
    // Encoding a step costs the CPU about as long as a small model's step runs on the GPU (~8 µs a
    // dispatch on the H200): done here, for the next replay, it overlaps this one instead of
    // leaving the GPU idle between steps. Command buffers are single-use; each replay takes a new set.
    this.encodedAhead = { turn: this.turn, buffers: this.encode(true, this.turn) };
    const staging = this.stagingBuffer(turn);
    this.reading[turn] = true;
    try {
      await staging.mapAsync(GPUMapMode.READ);
      const values = new Float32Array(staging.getMappedRange().slice(0));
      staging.unmap();
      return values;
    } finally {
      this.reading[turn] = false;
    }
  }

  /**
   * tfjs keeps a tensor's values on the CPU once they have been read (`data()`) and answers every
   * later read from that copy; a replay writes the state's GPU buffers without tfjs knowing. So a
   * state variable read once (a checkpoint) would read the same values ever after: each replay
   * drops those copies, and the next read downloads the buffer.
   */
  private forgetCpuCopies(): void {
    for (const variable of this.parts.state) {
      const data = this.backend.tensorMap.get(variable.dataId);
      if (data !== undefined) data.values = null;
    }
  }

  /**
   * One command buffer per submit of the recorded step; the last one copies the outputs into
   * staging buffer `turn` when `readBack`.
   */
  private encode(readBack: boolean, turn: number): GPUCommandBuffer[] {
    const { device } = this.backend;
    const last = this.parts.segments.length - 1;
    return this.parts.segments.map((segment, s) => {
      const encoder = device.createCommandEncoder();
      for (const command of segment.commands) {
        if (command.kind === 'copy') {
          encoder.copyBufferToBuffer(
            command.source as GPUBuffer,
            command.sourceOffset,
            command.target as GPUBuffer,
            command.targetOffset,
            command.size,
          );
          continue;
        }
        const pass = encoder.beginComputePass();
        let pipeline: Pipeline | undefined;
        let groups: readonly (BindGroup | undefined)[] = [];
        for (const dispatch of command.dispatches) {
          if (dispatch.pipeline !== pipeline) {
            pipeline = dispatch.pipeline;
            pass.setPipeline(pipeline as GPUComputePipeline);
          }
          dispatch.groups.forEach((group, index) => {
            if (group !== undefined && group !== groups[index]) pass.setBindGroup(index, group as GPUBindGroup);
          });
          groups = dispatch.groups;
          const [x, y, z] = dispatch.workgroups;
          pass.dispatchWorkgroups(x, y, z);
        }
        pass.end();
      }
      if (s === last) {
        this.encodeStateCopies(encoder);
        if (readBack)
          encoder.copyBufferToBuffer(
            this.parts.outputBuffer as GPUBuffer,
            0,
            this.stagingBuffer(turn),
            0,
            this.outputBytes,
          );
      }
      return encoder.finish();
    });
  }

  /** The recorded step's copies of the new state onto the buffers a replay reads it from. */
  copyStateBack(): void {
    flush(this.backend);
    const encoder = this.backend.device.createCommandEncoder();
    this.encodeStateCopies(encoder);
    this.backend.queue.submit([encoder.finish()]);
  }

  private encodeStateCopies(encoder: GPUCommandEncoder): void {
    for (const { source, target } of this.parts.copies) {
      encoder.copyBufferToBuffer(source as GPUBuffer, 0, target as GPUBuffer, 0, Math.min(source.size, target.size));
    }
  }

  /**
   * The GPU time of each dispatch of the step, measured without timestamp queries (which not every
   * device offers): each dispatch runs `repeats` times back to back in one pass and submit, timed
   * from submit to `onSubmittedWorkDone`, less the same round trip of an empty submit, divided by
   * `repeats`. In step order, with the pipeline's label (tfjs names its programs' shaders there).
   * Each submit's recorded uploads are written again before its dispatches are timed.
   * For measurements only: the buffers a dispatch writes are left as its repeats wrote them
   * (kernels that accumulate, e.g. with atomics, accumulate `repeats` times), so replay the step
   * again before reading what it computes.
   */
  async timeDispatches(repeats = 20): Promise<DispatchTime[]> {
    if (this.disposed) throw new Error('timing of a disposed step');
    const { device, queue } = this.backend;
    flush(this.backend);
    await queue.onSubmittedWorkDone();
    const roundTrip = async (encode: (encoder: GPUCommandEncoder) => void) => {
      const encoder = device.createCommandEncoder();
      encode(encoder);
      const start = performance.now();
      queue.submit([encoder.finish()]);
      await queue.onSubmittedWorkDone();
      return performance.now() - start;
    };
    const emptyTimes: number[] = [];
    for (let i = 0; i < 5; i++) emptyTimes.push(await roundTrip(() => {}));
    const empty = [...emptyTimes].sort((a, b) => a - b)[2] as number;
    const times: DispatchTime[] = [];
    for (const segment of this.parts.segments) {
      // The segment's uploads first (uniforms among them, which later segments may overwrite in a
      // shared arena), with the recorded bytes: the data do not change what a dispatch costs.
      for (const write of segment.writes) queue.writeBuffer(write.buffer as GPUBuffer, write.offset, write.bytes);
      for (const command of segment.commands) {
        if (command.kind !== 'pass') continue;
        for (const dispatch of command.dispatches) {
          const run = (times: number) => (encoder: GPUCommandEncoder) => {
            const pass = encoder.beginComputePass();
            pass.setPipeline(dispatch.pipeline as GPUComputePipeline);
            dispatch.groups.forEach((group, index) => {
              if (group !== undefined) pass.setBindGroup(index, group as GPUBindGroup);
            });
            const [x, y, z] = dispatch.workgroups;
            for (let r = 0; r < times; r++) pass.dispatchWorkgroups(x, y, z);
            pass.end();
          };
          // Once untimed first: a driver may finish building a pipeline on its first use.
          await roundTrip(run(1));
          const ms = await roundTrip(run(repeats));
          times.push({
            index: times.length,
            label: dispatch.pipeline.label ?? 'unlabelled',
            workgroups: dispatch.workgroups,
            ms: Math.max(0, ms - empty) / repeats,
          });
        }
      }
    }
    return times;
  }

  /** The values of a probe (as left by the last replay), or undefined for an unknown name. */
  async readProbe(name: string): Promise<Float32Array | undefined> {
    const probe = this.parts.probes.get(name);
    if (probe === undefined) return undefined;
    const { device, queue } = this.backend;
    const bytes = probe.count * 4;
    const staging = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    try {
      const encoder = device.createCommandEncoder();
      encoder.copyBufferToBuffer(probe.buffer as GPUBuffer, 0, staging, 0, bytes);
      queue.submit([encoder.finish()]);
      await staging.mapAsync(GPUMapMode.READ);
      return new Float32Array(staging.getMappedRange().slice(0));
    } finally {
      staging.destroy();
    }
  }

  get probeNames(): string[] {
    return [...this.parts.probes.keys()];
  }

  private get outputBytes(): number {
    return this.parts.outputCount * 4;
  }

  private stagingBuffer(turn: number): GPUBuffer {
    let staging = this.stagings[turn];
    if (staging === undefined) {
      staging = this.backend.device.createBuffer({
        size: this.outputBytes,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      });
      this.stagings[turn] = staging;
    }
    return staging;
  }

  /** Returns the plan's buffers: held-back releases to the pool, claimed idle ones destroyed. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    flush(this.backend);
    this.pool.observers.delete(this);
    livePlans.delete(this);
    for (const entry of this.parts.kept.splice(0)) {
      const heir = [...livePlans].find((plan) => plan.owns(entry.buffer));
      if (heir !== undefined) heir.adopt(entry);
      else this.pool.releaseKept(entry.buffer, entry.reuse);
    }
    for (const buffer of this.parts.claimed.splice(0)) this.pool.destroyClaimed(buffer);
    this.encodedAhead = undefined;
    for (const staging of this.stagings) staging?.destroy();
    this.stagings.fill(undefined);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
