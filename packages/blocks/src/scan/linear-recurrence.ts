import * as tf from '@tensorflow/tfjs';
import { linearScan } from './linear-scan.js';
import { defaultScanImplementation, type ScanImplementation } from './scan-implementation.js';

export type RecurrenceImplementation = ScanImplementation;

/**
 * h_t = a_t ⊙ h_{t−1} + b_t over axis 1 with h_{−1} = 0, for decay a and input b [B, L, F];
 * returns every h_t [B, L, F], differentiable in both a and b. The hot loop of RG-LRU.
 *
 * `fused` (default on cpu and wasm, whose tensors live in CPU memory): one JavaScript pass
 * forward and one backward over contiguous arrays inside `tf.customGrad`, instead of the
 * 2·log2(L) rounds of whole-tensor ops that `ops` (`linearScan`, the portable parallel scan,
 * for every other backend) costs. `INTERLEAVE_SCAN=fused|ops` forces one, as for Mamba.
 */
export function linearRecurrence(
  decay: tf.Tensor3D,
  input: tf.Tensor3D,
  implementation: RecurrenceImplementation = defaultScanImplementation(),
): tf.Tensor3D {
  return implementation === 'fused' ? fusedLinearRecurrence(decay, input) : linearScan(decay, input);
}

interface Dims {
  batch: number;
  length: number;
  features: number;
}

function fusedLinearRecurrence(decay: tf.Tensor3D, input: tf.Tensor3D): tf.Tensor3D {
  const run = tf.customGrad((a, b, _save) => {
    const shape = (a as tf.Tensor3D).shape;
    const dims = { batch: shape[0], length: shape[1], features: shape[2] };
    // Neither array is written to: on cpu, dataSync hands out the backend's own storage.
    const decays = (a as tf.Tensor).dataSync() as Float32Array;
    const states = recurrenceForward(decays, (b as tf.Tensor).dataSync() as Float32Array, dims);
    return {
      value: tf.tensor3d(states, shape),
      gradFunc: (dy: tf.Tensor) => {
        const grads = recurrenceBackward(decays, states, dy.dataSync() as Float32Array, dims);
        return [tf.tensor3d(grads.decay, shape), tf.tensor3d(grads.input, shape)];
      },
    };
  });
  return run(decay, input) as tf.Tensor3D;
}

/** Loops run batch, time, feature so every array is walked contiguously; the carry is float64. */
function recurrenceForward(decays: Float32Array, inputs: Float32Array, { batch, length, features }: Dims) {
  const states = new Float32Array(inputs.length);
  const carry = new Float64Array(features);
  for (let bi = 0; bi < batch; bi++) {
    carry.fill(0);
    for (let t = 0; t < length; t++) {
      const row = (bi * length + t) * features;
      for (let f = 0; f < features; f++) {
        const h = (decays[row + f] as number) * (carry[f] as number) + (inputs[row + f] as number);
        carry[f] = h;
        states[row + f] = h;
      }
    }
  }
  return states;
}

/**
 * Reverse-time pass. With g_t = ∂loss/∂h_t through every path, g_t = dy_t + a_{t+1} g_{t+1};
 * then ∂/∂b_t = g_t and ∂/∂a_t = g_t h_{t−1}.
 */
function recurrenceBackward(decays: Float32Array, states: Float32Array, dy: Float32Array, dims: Dims) {
  const { batch, length, features } = dims;
  const gradDecay = new Float32Array(states.length);
  const gradInput = new Float32Array(states.length);
  // Carries g_{t+1} multiplied by a_{t+1}, i.e. what flows into h_t from the future.
  const fromFuture = new Float64Array(features);
  for (let bi = 0; bi < batch; bi++) {
    fromFuture.fill(0);
    for (let t = length - 1; t >= 0; t--) {
      const row = (bi * length + t) * features;
      const previousRow = row - features;
      for (let f = 0; f < features; f++) {
        const g = (dy[row + f] as number) + (fromFuture[f] as number);
        gradInput[row + f] = g;
        gradDecay[row + f] = t > 0 ? g * (states[previousRow + f] as number) : 0;
        fromFuture[f] = g * (decays[row + f] as number);
      }
    }
  }
  return { decay: gradDecay, input: gradInput };
}
