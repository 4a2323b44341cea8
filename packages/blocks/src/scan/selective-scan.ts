import * as tf from '@tensorflow/tfjs';
import { linearScan } from './linear-scan.js';
import { defaultScanImplementation, type ScanImplementation } from './scan-implementation.js';

/**
 * The selective scan of Mamba (SPEC §2.1), without the D skip:
 *   h_t = exp(Δ_t ⊗ A) ⊙ h_{t−1} + (Δ_t ⊙ x_t) ⊗ B_t,   y_t = h_t · C_t
 * x, dt [B, L, d_inner]; a = −exp(A_log) [d_inner, d_state]; b, c [B, L, d_state] → y [B, L, d_inner].
 */
export interface SelectiveScanInputs {
  x: tf.Tensor3D;
  dt: tf.Tensor3D;
  a: tf.Tensor2D;
  b: tf.Tensor3D;
  c: tf.Tensor3D;
}

export type { ScanImplementation } from './scan-implementation.js';

/**
 * `fused`: one pass over the data in JavaScript, forward and backward, for backends whose
 * tensors live in CPU memory (cpu, wasm) — it never materialises the [B, L, d_inner, d_state]
 * decay and drive tensors as tfjs ops would. `ops`: the portable tf-op formulation
 * (a parallel scan), for every other backend. `INTERLEAVE_SCAN=fused|ops` forces one.
 */
export function selectiveScan(
  inputs: SelectiveScanInputs,
  implementation: ScanImplementation = defaultScanImplementation(),
): tf.Tensor3D {
  return implementation === 'fused' ? fusedSelectiveScan(inputs) : selectiveScanWithOps(inputs);
}

export function selectiveScanWithOps({ x, dt, a, b, c }: SelectiveScanInputs): tf.Tensor3D {
  return tf.tidy(() => {
    const [batch, length, dInner] = x.shape;
    const dState = a.shape[1];
    const decay = tf.exp(dt.expandDims(3).mul(a)); // [B, L, d_inner, d_state]
    const drive = dt.mul(x).expandDims(3).mul(b.expandDims(2));
    const flat: [number, number, number] = [batch, length, dInner * dState];
    const h = linearScan(decay.reshape(flat), drive.reshape(flat)).reshape([batch, length, dInner, dState]);
    return h.mul(c.expandDims(2)).sum(3) as tf.Tensor3D;
  });
}

function fusedSelectiveScan(inputs: SelectiveScanInputs): tf.Tensor3D {
  const scan = tf.customGrad((x, dt, a, b, c, _save) => {
    const shape = (x as tf.Tensor3D).shape;
    const data = {
      x: (x as tf.Tensor).dataSync() as Float32Array,
      dt: (dt as tf.Tensor).dataSync() as Float32Array,
      a: (a as tf.Tensor).dataSync() as Float32Array,
      b: (b as tf.Tensor).dataSync() as Float32Array,
      c: (c as tf.Tensor).dataSync() as Float32Array,
    };
    const dims = { batch: shape[0], length: shape[1], dInner: shape[2], dState: (a as tf.Tensor2D).shape[1] };
    const { y, ...saved } = scanForward(data, dims);
    return {
      value: tf.tensor3d(y, shape),
      gradFunc: (dy: tf.Tensor) => {
        const grads = scanBackward(data, dims, saved, dy.dataSync() as Float32Array);
        return [
          tf.tensor3d(grads.x, shape),
          tf.tensor3d(grads.dt, shape),
          tf.tensor2d(grads.a, [dims.dInner, dims.dState]),
          tf.tensor3d(grads.b, [dims.batch, dims.length, dims.dState]),
          tf.tensor3d(grads.c, [dims.batch, dims.length, dims.dState]),
        ];
      },
    };
  });
  return scan(inputs.x, inputs.dt, inputs.a, inputs.b, inputs.c) as tf.Tensor3D;
}

interface ScanData {
  x: Float32Array;
  dt: Float32Array;
  a: Float32Array;
  b: Float32Array;
  c: Float32Array;
}
interface ScanDims {
  batch: number;
  length: number;
  dInner: number;
  dState: number;
}

/**
 * Returns y, every h_t and every decay exp(Δ_t A) ([B, L, d_inner, d_state]); the backward pass
 * needs both, and keeping the decays saves recomputing the exponentials. Loops run batch, time,
 * channel, state so that every array is walked contiguously.
 */
function scanForward(data: ScanData, { batch, length, dInner, dState }: ScanDims) {
  const { x, dt, a, b, c } = data;
  const y = new Float32Array(batch * length * dInner);
  const states = new Float32Array(batch * length * dInner * dState);
  const decays = new Float32Array(states.length);
  const width = dInner * dState;
  for (let bi = 0; bi < batch; bi++) {
    for (let t = 0; t < length; t++) {
      const row = bi * length + t;
      const bcRow = row * dState;
      const stateRow = row * width;
      const previousRow = t > 0 ? stateRow - width : -1;
      for (let d = 0; d < dInner; d++) {
        const index = row * dInner + d;
        const delta = dt[index] as number;
        const driveScale = delta * (x[index] as number);
        const base = stateRow + d * dState;
        const aRow = d * dState;
        let out = 0;
        for (let n = 0; n < dState; n++) {
          const decay = Math.exp(delta * (a[aRow + n] as number));
          const previous = previousRow >= 0 ? (states[base - width + n] as number) : 0;
          const next = decay * previous + driveScale * (b[bcRow + n] as number);
          decays[base + n] = decay;
          states[base + n] = next;
          out += next * (c[bcRow + n] as number);
        }
        y[index] = out;
      }
    }
  }
  return { y, states, decays };
}

/** Reverse-time pass: gh_t = gy_t·C_t + exp(Δ_{t+1}A)·gh_{t+1}, then each input's share. */
function scanBackward(
  data: ScanData,
  { batch, length, dInner, dState }: ScanDims,
  forward: { states: Float32Array; decays: Float32Array },
  dy: Float32Array,
) {
  const { x, dt, a, b, c } = data;
  const { states, decays } = forward;
  const width = dInner * dState;
  const grads = {
    x: new Float32Array(x.length),
    dt: new Float32Array(dt.length),
    a: new Float32Array(a.length),
    b: new Float32Array(b.length),
    c: new Float32Array(c.length),
  };
  // Accumulators that sum over many terms are kept in float64.
  const gA = new Float64Array(a.length);
  const gB = new Float64Array(dState);
  const gC = new Float64Array(dState);
  // gh for every (channel, state) of one sequence, carried backwards in time.
  const gh = new Float64Array(width);
  for (let bi = 0; bi < batch; bi++) {
    gh.fill(0);
    for (let t = length - 1; t >= 0; t--) {
      const row = bi * length + t;
      const bcRow = row * dState;
      const stateRow = row * width;
      gB.fill(0);
      gC.fill(0);
      for (let d = 0; d < dInner; d++) {
        const index = row * dInner + d;
        const delta = dt[index] as number;
        const xValue = x[index] as number;
        const gy = dy[index] as number;
        const base = stateRow + d * dState;
        const carry = d * dState;
        let gDelta = 0;
        let gX = 0;
        for (let n = 0; n < dState; n++) {
          const aValue = a[carry + n] as number;
          const bValue = b[bcRow + n] as number;
          const decay = decays[base + n] as number;
          const previous = t > 0 ? (states[base - width + n] as number) : 0;
          const g = (gh[carry + n] as number) + gy * (c[bcRow + n] as number);
          gC[n] = (gC[n] as number) + gy * (states[base + n] as number);
          const decayTerm = g * decay * previous;
          gDelta += aValue * decayTerm + g * xValue * bValue;
          gX += g * delta * bValue;
          gB[n] = (gB[n] as number) + g * delta * xValue;
          gA[carry + n] = (gA[carry + n] as number) + delta * decayTerm;
          gh[carry + n] = g * decay;
        }
        grads.dt[index] = gDelta;
        grads.x[index] = gX;
      }
      for (let n = 0; n < dState; n++) {
        grads.b[bcRow + n] = gB[n] as number;
        grads.c[bcRow + n] = gC[n] as number;
      }
    }
  }
  grads.a.set(gA);
  return grads;
}
