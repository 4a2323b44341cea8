import { InterleaveError } from '@interleave/core';
import type * as tf from '@tensorflow/tfjs';
import {
  channelsScanBackwardOnGpu,
  channelsScanForwardOnGpu,
  channelsScanLargestBinding,
} from './selective-scan-channels-wgsl.js';
import {
  LANES_MAX_STATE,
  lanesScanBackwardOnGpu,
  lanesScanForwardOnGpu,
  lanesScanLargestBinding,
} from './selective-scan-lanes-wgsl.js';
import { type SelectiveScanShape, selectiveScanShape } from './selective-scan-shape.js';

/**
 * The WGSL selective scan registered for tfjs's `webgpu` backend. Two kernels compute it:
 * `lanes` (selective-scan-lanes-wgsl.ts, the default): one thread per (sequence, channel, state),
 * for d_state up to 256; `channels` (selective-scan-channels-wgsl.ts): one thread per
 * (sequence, channel), the first kernel, kept for comparison and for larger d_state.
 * `INTERLEAVE_SCAN_KERNEL=lanes|channels` picks one (GPU timing).
 */
export type SelectiveScanKernel = 'lanes' | 'channels';

export { type SelectiveScanShape, selectiveScanShape };

export function selectiveScanKernel(dState: number): SelectiveScanKernel {
  const setting = process.env.INTERLEAVE_SCAN_KERNEL;
  if (setting !== undefined && setting !== '' && setting !== 'lanes' && setting !== 'channels') {
    throw new InterleaveError(`INTERLEAVE_SCAN_KERNEL must be 'lanes' or 'channels', got '${setting}'`);
  }
  if (setting === 'channels' || dState > LANES_MAX_STATE) return 'channels';
  return 'lanes';
}

/** Floats of the largest buffer a forward or backward call binds for `shape.batch` sequences. */
export function selectiveScanLargestBinding(shape: SelectiveScanShape): number {
  return selectiveScanKernel(shape.dState) === 'lanes'
    ? lanesScanLargestBinding(shape)
    : channelsScanLargestBinding(shape);
}

export function selectiveScanForwardOnGpu(backend: tf.KernelBackend, inputs: tf.TensorInfo[]): tf.TensorInfo {
  const dState = (inputs[2] as tf.TensorInfo).shape[1] as number;
  return selectiveScanKernel(dState) === 'lanes'
    ? lanesScanForwardOnGpu(backend, inputs)
    : channelsScanForwardOnGpu(backend, inputs);
}

export function selectiveScanBackwardOnGpu(backend: tf.KernelBackend, inputs: tf.TensorInfo[]): tf.TensorInfo[] {
  const dState = (inputs[2] as tf.TensorInfo).shape[1] as number;
  return selectiveScanKernel(dState) === 'lanes'
    ? lanesScanBackwardOnGpu(backend, inputs)
    : channelsScanBackwardOnGpu(backend, inputs);
}
