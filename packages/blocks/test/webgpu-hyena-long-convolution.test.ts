import { convolutionCases } from './support/long-convolution-cases.js';
import { startWebgpuBackend } from './support/webgpu-device.js';

// webgpu takes `dft` up to WEBGPU_DFT_MAX_LENGTH and tfjs's FFT kernels beyond. The FFT kernel
// computes each term's phase in float32 as (index · i) scaled, so its error grows with the length:
// 3.6e-5 of the largest value at L = 300 on the software device, where `dft` (phases reduced
// modulo 2L in float64 when the basis is built) stays under 1e-5.
convolutionCases('webgpu', ['dft', 'fft'], startWebgpuBackend, { fft: 1e-4 });
