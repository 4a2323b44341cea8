import { GpuKernelContext } from '@interleave/core';
import type * as tf from '@tensorflow/tfjs';
import { reduceScanGradients, storageBindings } from './selective-scan-common-wgsl.js';
import { type SelectiveScanShape, selectiveScanShape } from './selective-scan-shape.js';

/**
 * Mamba's selective scan (docs/design.md, Mamba block) with one GPU thread per
 * (sequence, channel, state):
 *   h_t = exp(Δ_t ⊗ A) ⊙ h_{t−1} + (Δ_t ⊙ x_t) ⊗ B_t,   y_t = h_t · C_t
 * with x, Δ [B, L, D], A [D, N], B, C [B, L, N]. At Mamba's B16 · D512 · N16 that is 131,072
 * threads, where one thread per (sequence, channel) gave 8,192: too few to hide the latency of
 * a 1,024-step dependent walk on a GPU with 132 SMs. Each thread carries one state, so a step is
 * one exp and two FMAs; exp(Δ·A) is computed where it is used, and the [B, L, D, N] decay and
 * drive tensors of the tf-op scan never exist.
 *
 * A workgroup holds CHANNELS = ⌊256 / N⌋ channels × N state lanes (the few lanes left over when
 * N does not divide 256 idle). y_t, a sum over the N lanes of a channel, is reduced in batches:
 * every thread writes h·C for BLOCK steps to workgroup memory, one barrier, then each thread sums
 * one (step, channel), another barrier: two barriers per BLOCK steps instead of one per step.
 * Subgroup operations would avoid the workgroup memory, but Dawn's `subgroups` feature is
 * missing on the CI device, so nothing here needs it.
 *
 * The backward pass recomputes: a checkpoint pass (the forward walk without y) stores h every
 * CHUNK steps ([B, L/CHUNK, D, N], 32 MiB at the shape above), then the backward walk recomputes
 * each chunk's CHUNK states from its checkpoint into registers and walks it backwards carrying
 * dh. Its four per-step sums are batched as y's are: dx and dΔ (sums over the state lanes of a
 * channel) and dB, dC (sums over the workgroup's channels, written as per-workgroup partials that
 * a small pass adds in a fixed order). dA accumulates per thread and a small pass adds the
 * sequences. No atomics: results are bit-identical run to run.
 *
 * Every walk is split into dispatches of at most STEPS_PER_DISPATCH steps that hand the carried
 * state (forward) or gradients (backward) on through memory: it bounds the time one dispatch runs
 * (GPU watchdogs; Mesa's llvmpipe, the CI device, drops the writes of a dispatch that walks too long).
 */

/** Threads per workgroup; also the largest d_state this kernel serves (one channel per group). */
const WORKGROUP = 256;
/** Steps whose y sums the forward batches per pair of barriers (BLOCK·256 floats: 16 KiB). */
const FORWARD_BLOCK = 16;
/** Steps whose four sums the backward batches per pair of barriers (4·BLOCK·256 floats: 16 KiB). */
const BACKWARD_BLOCK = 4;
/** Steps between the checkpoints the backward pass recomputes from (a multiple of BACKWARD_BLOCK). */
const CHUNK = 16;
/** Steps one dispatch walks (a multiple of CHUNK and FORWARD_BLOCK). */
const STEPS_PER_DISPATCH = 256;

/** The largest d_state the lanes kernel serves. */
export const LANES_MAX_STATE = WORKGROUP;

function channelsPerGroup(dState: number): number {
  return Math.floor(WORKGROUP / dState);
}

/** Floats of the largest buffer a forward or backward call binds for `shape.batch` sequences. */
export function lanesScanLargestBinding(shape: SelectiveScanShape): number {
  const { batch, length, dInner, dState } = shape;
  const carried = batch * Math.ceil(length / STEPS_PER_DISPATCH) * dInner * dState;
  return Math.max(scratchLayout(shape).total, batch * length * dInner, carried);
}

/**
 * Scratch layout of the backward pass (floats): [A copy D·N | checkpoints B·chunks·D·N |
 * dA partials B·D·N | carried dh B·D·N | dB,dC partials B·L·groups·2N].
 */
function scratchLayout({ batch, length, dInner, dState }: SelectiveScanShape) {
  const groups = Math.ceil(dInner / channelsPerGroup(dState));
  const chunks = Math.ceil(length / CHUNK);
  const checkpoints = dInner * dState;
  const dAPartials = checkpoints + batch * chunks * dInner * dState;
  const carries = dAPartials + batch * dInner * dState;
  const dbcPartials = carries + batch * dInner * dState;
  const total = dbcPartials + batch * length * groups * 2 * dState;
  return { groups, chunks, checkpoints, dAPartials, carries, dbcPartials, total };
}

/** WGSL shared by the passes: which (channel, state) lane this thread is. */
function laneSetup(dState: number): string {
  return `
const N = ${dState}u;
const CHANNELS = ${channelsPerGroup(dState)}u;
const WORKGROUP = ${WORKGROUP}u;`;
}

function laneLocals(): string {
  return `
  let sequence = group.y;
  let n = lane % N;
  let slot = lane / N;
  let channel = group.x * CHANNELS + slot;
  // Lanes past the last channel (and the spare lanes when N does not divide the workgroup) read a
  // real channel's inputs, keep every barrier, and contribute and write nothing.
  let live = slot < CHANNELS && channel < dims.dInner;
  let d = min(channel, dims.dInner - 1u);`;
}

/**
 * The forward walk over steps [firstStep, endStep). States are kept in `states` [B, chunks, D, N]
 * where entry k is h before step k·chunkSteps: read at the start (zero at step 0), written at every
 * chunk end. With `withOutput` it writes y (chunkSteps = STEPS_PER_DISPATCH: states are only the
 * hand-over between dispatches); without, it is the backward pass's checkpoint pass (chunkSteps = CHUNK).
 */
function forwardShader(dState: number, withOutput: boolean): string {
  const inputs = withOutput ? ['x', 'dt', 'rates', 'bIn', 'cIn'] : ['x', 'dt', 'rates', 'bIn'];
  const outputs = withOutput ? ['y', 'states'] : ['states'];
  const count = inputs.length + outputs.length;
  return `
${storageBindings(inputs, outputs)}
struct Dims { length: u32, dInner: u32, chunkSteps: u32, chunks: u32, statesOffset: u32, firstStep: u32, endStep: u32 };
@group(0) @binding(${count}) var<uniform> dims: Dims;
${laneSetup(dState)}
const BLOCK = ${FORWARD_BLOCK}u;
${withOutput ? 'var<workgroup> products: array<f32, BLOCK * WORKGROUP>;' : ''}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  ${laneLocals()}
  let rate = rates[d * N + n];
  let stateBase = dims.statesOffset + (sequence * dims.chunks * dims.dInner + d) * N + n;
  let chunkStride = dims.dInner * N;
  var h = 0.0;
  if (dims.firstStep > 0u) { h = states[stateBase + (dims.firstStep / dims.chunkSteps) * chunkStride]; }
  for (var block = dims.firstStep; block < dims.endStep; block += BLOCK) {
    // A whole block runs unguarded, so its loads do not wait on the branch and can be issued together.
    if (block + BLOCK <= dims.endStep) {${forwardSteps(withOutput, false)}
      if (live && (block + BLOCK) % dims.chunkSteps == 0u && block + BLOCK < dims.length) {
        states[stateBase + ((block + BLOCK) / dims.chunkSteps) * chunkStride] = h;
      }
    } else {${forwardSteps(withOutput, true)}
    }
    ${withOutput ? forwardReduction() : ''}
  }
}`;
}

/**
 * The BLOCK steps of one block written out (the state update's loads do not depend on h, so
 * unrolled they overlap); `guarded` for the last, partial block of a walk. A chunk ends only at
 * a block's end (chunkSteps is a multiple of BLOCK and walks start on chunk boundaries).
 */
function forwardSteps(withOutput: boolean, guarded: boolean): string {
  return Array.from({ length: FORWARD_BLOCK }, (_, j) => {
    const body = `
        let row = sequence * dims.length + block + ${j}u;
        let i = row * dims.dInner + d;
        let delta = dt[i];
        h = exp(delta * rate) * h + delta * x[i] * bIn[row * N + n];${
          withOutput
            ? `
        products[${j}u * WORKGROUP + lane] = h * cIn[row * N + n];`
            : ''
        }`;
    return guarded ? `\n      if (block + ${j}u < dims.endStep) {${body}\n      }` : `\n      {${body}\n      }`;
  }).join('');
}

/** y for the block's (step, channel) pairs, each summed over its N lanes in a fixed order. */
function forwardReduction(): string {
  return `
    workgroupBarrier();
    for (var pair = lane; pair < BLOCK * CHANNELS; pair += WORKGROUP) {
      let j = pair / CHANNELS;
      let outChannel = group.x * CHANNELS + pair % CHANNELS;
      let t = block + j;
      if (t < dims.endStep && outChannel < dims.dInner) {
        let first = j * WORKGROUP + (pair % CHANNELS) * N;
        var sum = 0.0;
        // Each channel starts at its own lane so that neighbouring threads read different memory
        // banks; the order is fixed per channel, so results stay reproducible.
        var m = (pair % CHANNELS) % N;
        for (var k = 0u; k < N; k++) {
          sum += products[first + m];
          m = select(m + 1u, 0u, m + 1u == N);
        }
        y[(sequence * dims.length + t) * dims.dInner + outChannel] = sum;
      }
    }
    workgroupBarrier();`;
}

/**
 * The backward walk over chunks [firstChunk, endChunk), last to first. Per step, each thread's
 * four contributions go to workgroup memory ([4][BLOCK][WORKGROUP]): Δ·g·B and A·g·decay·h_{t−1} + x·g·B
 * (summed over the lanes: dx and dΔ), and g·Δ·x, dy·h_t (summed over the channels: this
 * workgroup's share of dB, dC), where g = dh_t. The reduction phase reads workgroup memory only,
 * so no global-memory latency sits between a block's two barriers.
 *
 * A chunk's CHUNK recomputed states live in named registers (s0…s15): the chunk's walk is
 * written out step by step here rather than looped, since a private array indexed by a loop
 * counter is placed in (slow) local memory unless the GPU compiler happens to unroll the loop.
 */
function backwardShader(dState: number): string {
  const recompute = Array.from(
    { length: CHUNK },
    (_, j) => `
    {
      let t = t0 + ${j}u;
      if (t < dims.length) {
        let row = sequence * dims.length + t;
        let i = row * dims.dInner + d;
        let delta = dt[i];
        h = exp(delta * rate) * h + delta * x[i] * bIn[row * N + n];
      }
      s${j} = h;
    }`,
  ).join('');
  const walk: string[] = [];
  for (let blockEnd = CHUNK; blockEnd > 0; blockEnd -= BACKWARD_BLOCK) {
    for (let back = 0; back < BACKWARD_BLOCK; back++) {
      const j = blockEnd - 1 - back;
      walk.push(`
    {
      let t = t0 + ${j}u;
      var gX = 0.0;
      var gDelta = 0.0;
      var gBInput = 0.0;
      var gCInput = 0.0;
      if (t < dims.length && live) {
        let row = sequence * dims.length + t;
        let i = row * dims.dInner + d;
        let delta = dt[i];
        let xValue = x[i];
        let gy = dy[i];
        let decay = exp(delta * rate);
        let g = gh + gy * cIn[row * N + n];
        let gB = g * bIn[row * N + n];
        let decayTerm = g * decay * ${j > 0 ? `s${j - 1}` : 'start'};
        gX = delta * gB;
        gDelta = rate * decayTerm + xValue * gB;
        gBInput = g * delta * xValue;
        gCInput = gy * s${j};
        gA += delta * decayTerm;
        gh = g * decay;
      }
      terms[${back}u * WORKGROUP + lane] = gX;
      terms[(BLOCK + ${back}u) * WORKGROUP + lane] = gDelta;
      terms[(2u * BLOCK + ${back}u) * WORKGROUP + lane] = gBInput;
      terms[(3u * BLOCK + ${back}u) * WORKGROUP + lane] = gCInput;
    }`);
    }
    walk.push(`
    reduceBlock(group.x, lane, sequence, t0 + ${blockEnd}u);`);
  }
  return `
${storageBindings(['x', 'dt', 'bIn', 'cIn', 'dy'], ['scratch', 'dx', 'ddt'])}
struct Dims {
  length: u32, dInner: u32, chunks: u32, groups: u32, checkpoints: u32, dAPartials: u32, carries: u32, dbcPartials: u32,
  firstChunk: u32, endChunk: u32,
};
@group(0) @binding(8) var<uniform> dims: Dims;
${laneSetup(dState)}
const BLOCK = ${BACKWARD_BLOCK}u;
const CHUNK = ${CHUNK}u;
var<workgroup> terms: array<f32, 4u * BLOCK * WORKGROUP>;

// The block of steps [blockEnd − BLOCK, blockEnd), written to \`terms\` back to front: dx, dΔ for
// each (step, channel) and this workgroup's dB, dC partials for each (step, state).
fn reduceBlock(channelGroup: u32, lane: u32, sequence: u32, blockEnd: u32) {
  workgroupBarrier();
  for (var item = lane; item < BLOCK * (CHANNELS + N); item += WORKGROUP) {
    if (item < BLOCK * CHANNELS) {
      let back = item / CHANNELS;
      let column = item % CHANNELS;
      let outChannel = channelGroup * CHANNELS + column;
      let t = blockEnd - 1u - back;
      if (t < dims.length && outChannel < dims.dInner) {
        let first = back * WORKGROUP + column * N;
        var sumX = 0.0;
        var sumDelta = 0.0;
        // Each channel starts its sum at its own lane so that neighbouring threads read
        // different memory banks; the order is fixed per channel, so results stay reproducible.
        var m = column % N;
        for (var k = 0u; k < N; k++) {
          sumX += terms[first + m];
          sumDelta += terms[BLOCK * WORKGROUP + first + m];
          m = select(m + 1u, 0u, m + 1u == N);
        }
        let i = (sequence * dims.length + t) * dims.dInner + outChannel;
        dx[i] = sumX;
        ddt[i] = sumDelta;
      }
    } else {
      let rest = item - BLOCK * CHANNELS;
      let back = rest / N;
      let state = rest % N;
      let t = blockEnd - 1u - back;
      if (t < dims.length) {
        var sumB = 0.0;
        var sumC = 0.0;
        for (var c = 0u; c < CHANNELS; c++) {
          sumB += terms[(2u * BLOCK + back) * WORKGROUP + c * N + state];
          sumC += terms[(3u * BLOCK + back) * WORKGROUP + c * N + state];
        }
        let partial = dims.dbcPartials + ((sequence * dims.length + t) * dims.groups + channelGroup) * 2u * N + state;
        scratch[partial] = sumB;
        scratch[partial + N] = sumC;
      }
    }
  }
  workgroupBarrier();
}

@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) group: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  ${laneLocals()}
  let rate = scratch[d * N + n];
  let carried = (sequence * dims.dInner + d) * N + n;
  let fromEnd = dims.endChunk == dims.chunks;
  var gh = select(scratch[dims.carries + carried], 0.0, fromEnd);
  var gA = select(scratch[dims.dAPartials + carried], 0.0, fromEnd);
  ${Array.from({ length: CHUNK }, (_, j) => `var s${j} = 0.0;`).join(' ')}
  for (var k = dims.endChunk; k > dims.firstChunk; k--) {
    let chunk = k - 1u;
    let t0 = chunk * CHUNK;
    var start = 0.0;
    if (chunk > 0u) { start = scratch[dims.checkpoints + ((sequence * dims.chunks + chunk) * dims.dInner + d) * N + n]; }
    var h = start;${recompute}${walk.join('')}
  }
  if (live) {
    scratch[dims.dAPartials + carried] = gA;
    scratch[dims.carries + carried] = gh;
  }
}`;
}

/** The dispatches [first, end) of a walk over `steps` steps, `span` steps each. */
function spans(steps: number, span: number): [number, number][] {
  const result: [number, number][] = [];
  for (let first = 0; first < steps; first += span) result.push([first, Math.min(steps, first + span)]);
  return result;
}

export function lanesScanForwardOnGpu(backend: tf.KernelBackend, [x, dt, a, b, c]: tf.TensorInfo[]): tf.TensorInfo {
  const context = new GpuKernelContext(backend);
  const { batch, length, dInner, dState } = selectiveScanShape(x as tf.TensorInfo, a as tf.TensorInfo);
  const y = context.allocate([batch, length, dInner]);
  const chunks = Math.ceil(length / STEPS_PER_DISPATCH);
  const handOver = context.allocate([batch * chunks * dInner * dState]);
  for (const [firstStep, endStep] of spans(length, STEPS_PER_DISPATCH)) {
    context.run({
      key: `InterleaveSelectiveScanLanes_N${dState}`,
      shader: () => forwardShader(dState, true),
      bindings: [x, dt, a, b, c, y, handOver] as tf.TensorInfo[],
      uniforms: [length, dInner, STEPS_PER_DISPATCH, chunks, 0, firstStep, endStep],
      workgroups: [Math.ceil(dInner / channelsPerGroup(dState)), batch],
    });
  }
  context.release(handOver);
  return y;
}

export function lanesScanBackwardOnGpu(
  backend: tf.KernelBackend,
  [x, dt, a, b, c, dy]: tf.TensorInfo[],
): tf.TensorInfo[] {
  const context = new GpuKernelContext(backend);
  const shape = selectiveScanShape(x as tf.TensorInfo, a as tf.TensorInfo);
  const { batch, length, dInner, dState } = shape;
  const layout = scratchLayout(shape);
  const scratch = context.allocate([layout.total]);
  // A goes into the scratch buffer so that the backward shader stays within 8 storage bindings.
  context.copy(a as tf.TensorInfo, 0, scratch, 0, dInner * dState);
  // The checkpoint pass writes the scratch buffer's checkpoint region (A is bound on its own there).
  for (const [firstStep, endStep] of spans(length, STEPS_PER_DISPATCH)) {
    context.run({
      key: `InterleaveSelectiveScanLanesCheckpoints_N${dState}`,
      shader: () => forwardShader(dState, false),
      bindings: [x, dt, a, b, scratch] as tf.TensorInfo[],
      uniforms: [length, dInner, CHUNK, layout.chunks, layout.checkpoints, firstStep, endStep],
      workgroups: [layout.groups, batch],
    });
  }
  const dx = context.allocate([batch, length, dInner]);
  const ddt = context.allocate([batch, length, dInner]);
  const chunksPerDispatch = STEPS_PER_DISPATCH / CHUNK;
  for (let endChunk = layout.chunks; endChunk > 0; endChunk -= chunksPerDispatch) {
    const firstChunk = Math.max(0, endChunk - chunksPerDispatch);
    context.run({
      key: `InterleaveSelectiveScanLanesGrad_N${dState}`,
      shader: () => backwardShader(dState),
      bindings: [x, dt, b, c, dy, scratch, dx, ddt] as tf.TensorInfo[],
      uniforms: [
        length,
        dInner,
        layout.chunks,
        layout.groups,
        layout.checkpoints,
        layout.dAPartials,
        layout.carries,
        layout.dbcPartials,
        firstChunk,
        endChunk,
      ],
      workgroups: [layout.groups, batch],
    });
  }
  const [da, db, dc] = reduceScanGradients(context, scratch, shape, layout);
  context.release(scratch);
  return [dx, ddt, da, db, dc];
}
