import type { BackendCapabilities, FlopCount } from '@interleave/core';
import * as tf from '@tensorflow/tfjs';

/**
 * The long causal convolution of Hyena (docs/design.md#hyena), one filter per channel as long as the
 * sequence:  y[b, t, c] = Σ_{s ≤ t} filter[t − s, c] · x[b, s, c].
 *
 * Two formulations of the same product of spectra, both exact (tested against each other and
 * an O(L²) loop, values and gradients):
 * - `fft`: irfft(rfft(x, 2L) · rfft(h, 2L))[:L], O(L log L), on tfjs's FFT kernels.
 * - `dft`: the same transforms as dense matmuls against fixed cosine/sine matrices, O(L²)
 *   flops, on matmul and elementwise kernels only (every backend has them).
 * tfjs has no gradient for rfft/irfft (none for FFT, Complex, Real or Imag), so both run inside
 * `tf.customGrad` with the analytic backward: the adjoint of a causal convolution is a
 * correlation, the same product with the other factor's spectrum conjugated.
 *
 * Which backend takes which path (`longConvolutionMethodFor`):
 * - wasm: `dft` (no FFT/Complex kernels);
 * - cpu: `dft`, though it has the kernels: its FFT builds tensors per row and per radix-2
 *   level and took 14 s for a forward at B = 32, L = 64, C = 64, where `dft` takes 0.2 s;
 * - webgpu: `dft` up to WEBGPU_DFT_MAX_LENGTH, `fft` beyond. tfjs-webgpu's FFT kernel is itself
 *   an O(N²) DFT at N = 2L, one output per thread, each summing N terms with a sine and a cosine
 *   computed per term and nothing shared between threads; `dft` does the same multiply-adds from a
 *   precomputed basis in tiled matmul kernels. A Hyena (64, 4) d64 training step at batch 8 on the
 *   software device: 1,601 ms and 818 dispatches by `fft`, 713 ms and 654 by `dft`. The bases are
 *   uploaded with each step (8·(L + 1)·L floats: 8.4 MB at L = 512), hence the limit.
 * - tensorflow: `fft` (native O(L log L) kernels); any other backend: `fft` if it has the
 *   kernels, else `dft`.
 * Why not a Toeplitz matrix per channel (the obvious O(L²) form): it needs a matmul batched
 * over channels, which tfjs-wasm runs on a slow generic path (~1.4 GFLOP/s against ~20 for a
 * plain 2-D matmul); measured at B = 32, L = 64, C = 64 on wasm, forward + backward of one
 * convolution: Toeplitz 39–49 ms, `dft` 12 ms (at L = 256: 479 against 126 ms).
 * `INTERLEAVE_LONG_CONV=fft|dft` forces one (fft still needs the kernels).
 */
export type LongConvolutionMethod = 'fft' | 'dft';

/** What rfft/irfft are built from in tfjs. */
const FFT_KERNELS = ['FFT', 'IFFT', 'Complex', 'Real', 'Imag'] as const;

/**
 * Backends whose FFT is missing (wasm) or far slower than the DFT as matmuls (cpu: its FFT
 * kernel builds tensors per row and per radix-2 level).
 */
const CPU_MEMORY_BACKENDS = new Set(['cpu', 'wasm']);

/** The longest sequence webgpu convolves by DFT matmuls (their bases are uploaded with every step). */
export const WEBGPU_DFT_MAX_LENGTH = 512;

/** The method for a block on `backend` whose sequences are at most `maxLength` long. */
export function longConvolutionMethodFor(backend: BackendCapabilities, maxLength: number): LongConvolutionMethod {
  const forced = process.env.INTERLEAVE_LONG_CONV;
  if (forced === 'fft' || forced === 'dft') return forced;
  if (CPU_MEMORY_BACKENDS.has(backend.name)) return 'dft';
  if (backend.name === 'webgpu' && maxLength <= WEBGPU_DFT_MAX_LENGTH) return 'dft';
  return FFT_KERNELS.every((kernel) => backend.hasKernel(kernel)) ? 'fft' : 'dft';
}

/** x [B, L, C], filter [L, C] → y [B, L, C]. */
export function causalLongConvolution(x: tf.Tensor3D, filter: tf.Tensor2D, method: LongConvolutionMethod): tf.Tensor3D {
  const [, length, channels] = x.shape;
  if (filter.shape[0] !== length || filter.shape[1] !== channels) {
    throw new Error(`long convolution: filter [${filter.shape}] does not match x [${x.shape}] (needs [L, C])`);
  }
  return method === 'fft' ? fftConvolution(x, filter) : dftConvolution(x, filter);
}

/** FLOPs of a real FFT (or inverse) of size n, the usual estimate: 2.5·n·log₂ n. */
function realFftFlops(size: number): number {
  return 2.5 * size * Math.log2(size);
}

/**
 * FLOPs per token and channel of the long convolution by FFT, the method's intrinsic cost
 * (the `dft` path computes the same spectra with O(L) FLOPs per token, as dense matmuls,
 * because that is faster on wasm and cpu at these lengths; it is not what is counted).
 * Forward per sequence and channel: rfft of the signal at 2L, L + 1 complex products (6 each),
 * irfft. Backward, as `fftConvolution`'s gradFunc: rfft of dy, two conjugate products and the
 * batch sum of the filter's (2 per bin), irfft of dx. The filter's own transforms (forward, and
 * its gradient's inverse transform) happen once per batch and are not per-token work.
 */
export function longConvolutionFlops(length: number): FlopCount {
  const transforms = 2 * realFftFlops(2 * length);
  const bins = length + 1;
  return { forward: (transforms + 6 * bins) / length, backward: (transforms + (12 + 2) * bins) / length };
}

// ---------------------------------------------------------------------------------------------
// FFT

/** A real signal's half spectrum, kept as two real tensors so the arithmetic needs no complex kernels. */
interface Spectrum {
  re: tf.Tensor;
  im: tf.Tensor;
}

function fftConvolution(x: tf.Tensor3D, filter: tf.Tensor2D): tf.Tensor3D {
  const [batch, length, channels] = x.shape;
  const size = 2 * length; // zero-padding to 2L turns the circular convolution into a linear one
  const bins = length + 1;
  const convolve = tf.customGrad((signal, taps, save) => {
    const value = tf.tidy(() => {
      const signalSpectrum = spectrum(channelRows(signal as tf.Tensor3D), size);
      const filterSpectrum = spectrum((taps as tf.Tensor2D).transpose(), size);
      (save as tf.GradSaveFunc)([signalSpectrum.re, signalSpectrum.im, filterSpectrum.re, filterSpectrum.im]);
      const product = multiply(batched(signalSpectrum, batch, channels, bins), filterSpectrum, false);
      return timeMajor(inverse(product, batch * channels, length), batch);
    });
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [sRe, sIm, fRe, fIm] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
          const outputSpectrum = batched(spectrum(channelRows(dy as tf.Tensor3D), size), batch, channels, bins);
          // dx[s] = Σ_{t ≥ s} dy[t] h[t − s]: a correlation with the filter.
          const dSignal = multiply(outputSpectrum, { re: fRe, im: fIm }, true);
          // dh[k] = Σ_b Σ_t dy[t] x[t − k]: a correlation with the input, summed over the batch
          // in the frequency domain (linear), so one inverse transform serves every sequence.
          const dFilterProduct = multiply(outputSpectrum, batched({ re: sRe, im: sIm }, batch, channels, bins), true);
          const dFilter = { re: dFilterProduct.re.sum(0), im: dFilterProduct.im.sum(0) };
          return [
            timeMajor(inverse(dSignal, batch * channels, length), batch),
            inverse(dFilter, channels, length).transpose(),
          ];
        }),
    };
  });
  return convolve(x, filter) as tf.Tensor3D;
}

/** [B, L, C] → [B·C, L]: one row per (sequence, channel), time last as rfft wants. */
function channelRows(x: tf.Tensor3D): tf.Tensor2D {
  const [batch, length, channels] = x.shape;
  return tf.tidy(() => x.transpose([0, 2, 1]).reshape([batch * channels, length]));
}

/** [B·C, L] → [B, L, C]. */
function timeMajor(rows: tf.Tensor2D, batch: number): tf.Tensor3D {
  const [flat, length] = rows.shape;
  return tf.tidy(() => rows.reshape([batch, flat / batch, length]).transpose([0, 2, 1]));
}

function spectrum(rows: tf.Tensor2D, size: number): Spectrum {
  return tf.tidy(() => {
    const complex = tf.spectral.rfft(rows, size);
    return { re: tf.real(complex), im: tf.imag(complex) };
  });
}

function batched(s: Spectrum, batch: number, channels: number, bins: number): Spectrum {
  return { re: s.re.reshape([batch, channels, bins]), im: s.im.reshape([batch, channels, bins]) };
}

/** a · b, or a · conj(b); broadcasting like tf.mul. */
function multiply(a: Spectrum, b: Spectrum, conjugateB: boolean): Spectrum {
  return tf.tidy(() =>
    conjugateB
      ? { re: a.re.mul(b.re).add(a.im.mul(b.im)), im: a.im.mul(b.re).sub(a.re.mul(b.im)) }
      : { re: a.re.mul(b.re).sub(a.im.mul(b.im)), im: a.re.mul(b.im).add(a.im.mul(b.re)) },
  );
}

/** The first `length` samples of the inverse transform, as rows [R, L]. */
function inverse(s: Spectrum, rows: number, length: number): tf.Tensor2D {
  return tf.tidy(() => {
    const bins = length + 1;
    const signal = tf.spectral.irfft(tf.complex(s.re.reshape([rows, bins]), s.im.reshape([rows, bins])));
    return (signal as tf.Tensor2D).slice([0, 0], [rows, length]);
  });
}

// ---------------------------------------------------------------------------------------------
// DFT as matmuls

/**
 * The same product of spectra as `fft`, with the transforms done as dense matmuls against fixed
 * cosine and sine matrices: O(L²) flops like a Toeplitz product, but every channel shares the
 * one basis, so each transform is a plain 2-D matmul over all B·C signals — the fast path of
 * tfjs-wasm, where a matmul batched over channels (as a Toeplitz product needs) runs about
 * 10× slower per flop. Real and imaginary parts are separate tensors (splitting a stacked
 * spectrum costs more than the extra matmul on wasm).
 *
 * Time-major layout: x as [L, B·C], spectra [L + 1, B, C].
 */
function dftConvolution(x: tf.Tensor3D, filter: tf.Tensor2D): tf.Tensor3D {
  const [batch, length, channels] = x.shape;
  const bins = length + 1;
  const basis = dftBasis(length);
  const spectrumShape: [number, number, number] = [bins, batch, channels];
  const convolve = tf.customGrad((signal, taps, save) => {
    const value = tf.tidy(() => {
      const analysis = { cos: basis.matrix('cos'), sin: basis.matrix('sin') };
      const rows = toRows(signal as tf.Tensor3D);
      const signalSpectrum = {
        re: tf.matMul(analysis.cos, rows).reshape(spectrumShape),
        im: tf.matMul(analysis.sin, rows).reshape(spectrumShape),
      };
      const filterSpectrum = {
        re: tf.matMul(analysis.cos, taps as tf.Tensor2D).reshape([bins, 1, channels]),
        im: tf.matMul(analysis.sin, taps as tf.Tensor2D).reshape([bins, 1, channels]),
      };
      (save as tf.GradSaveFunc)([signalSpectrum.re, signalSpectrum.im, filterSpectrum.re, filterSpectrum.im]);
      const product = multiply(signalSpectrum, filterSpectrum, false);
      const synthesis = { cos: basis.matrix('synthesisCos'), sin: basis.matrix('synthesisSin') };
      return fromRows(combine(synthesis, product, batch * channels), batch);
    });
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [sRe, sIm, fRe, fIm] = saved as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor];
          // Each transform's adjoint is its transpose.
          const synthesisT = { cos: basis.matrix('synthesisCosT'), sin: basis.matrix('synthesisSinT') };
          const rows = toRows(dy as tf.Tensor3D);
          const dProduct = {
            re: tf.matMul(synthesisT.cos, rows).reshape(spectrumShape),
            im: tf.matMul(synthesisT.sin, rows).reshape(spectrumShape),
          };
          // The adjoint of multiplying by a spectrum is multiplying by its conjugate:
          // dX̂ = dŶ · conj(Ĥ), dĤ = Σ_b dŶ · conj(X̂).
          const dSignal = multiply(dProduct, { re: fRe, im: fIm }, true);
          const dFilterProduct = multiply(dProduct, { re: sRe, im: sIm }, true);
          const dFilter = { re: dFilterProduct.re.sum(1), im: dFilterProduct.im.sum(1) };
          const analysisT = { cos: basis.matrix('cosT'), sin: basis.matrix('sinT') };
          return [
            fromRows(combine(analysisT, dSignal, batch * channels), batch),
            combine(analysisT, dFilter, channels),
          ];
        }),
    };
  });
  return convolve(x, filter) as tf.Tensor3D;
}

/** [B, L, C] → [L, B·C]. */
function toRows(x: tf.Tensor3D): tf.Tensor2D {
  const [batch, length, channels] = x.shape;
  return x.transpose([1, 0, 2]).reshape([length, batch * channels]);
}

/** [L, B·C] → [B, L, C]. */
function fromRows(rows: tf.Tensor, batch: number): tf.Tensor3D {
  const [length, flat] = rows.shape as [number, number];
  return rows.reshape([length, batch, flat / batch]).transpose([1, 0, 2]) as tf.Tensor3D;
}

/** m.cos · re + m.sin · im, with the spectrum flattened to [bins, columns]. */
function combine(m: { cos: tf.Tensor2D; sin: tf.Tensor2D }, s: Spectrum, columns: number): tf.Tensor2D {
  const bins = s.re.shape[0] as number;
  return tf.matMul(m.cos, s.re.reshape([bins, columns])).add(tf.matMul(m.sin, s.im.reshape([bins, columns])));
}

type BasisMatrix =
  | 'cos'
  | 'sin'
  | 'cosT'
  | 'sinT'
  | 'synthesisCos'
  | 'synthesisSin'
  | 'synthesisCosT'
  | 'synthesisSinT';

interface DftBasis {
  /** A constant tensor on the current backend (arrays are cached, tensors are not). */
  matrix(name: BasisMatrix): tf.Tensor2D;
}

/** Bases for the last few lengths used; each holds 8·(L + 1)·L floats. */
const bases = new Map<number, DftBasis>();
const CACHED_BASES = 4;

/**
 * The real DFT of size 2L restricted to what a causal convolution needs: inputs are zero beyond
 * L (so the analysis matrices have L columns) and only the first L outputs of the inverse are
 * kept (so the synthesis matrices have L rows).
 * - analysis [L + 1, L]: cos(π f t / L) and −sin(π f t / L), f = 0..L: X̂ = cos·x + i sin·x;
 * - synthesis [L, L + 1]: x = synthesisCos·Re X̂ + synthesisSin·Im X̂ over the first L samples,
 *   the analysis transposed and weighted by w_f / 2L (w = 1 at f = 0 and L, else 2: the other
 *   half of the spectrum is the conjugate mirror).
 * The sine rows at f = 0 and f = L are zero; they are kept so that real and imaginary parts align.
 */
function dftBasis(length: number): DftBasis {
  const cached = bases.get(length);
  if (cached) return cached;
  const bins = length + 1;
  const cos = new Float32Array(bins * length);
  const sin = new Float32Array(bins * length);
  const synthesisCosT = new Float32Array(bins * length);
  const synthesisSinT = new Float32Array(bins * length);
  for (let f = 0; f < bins; f++) {
    const edge = f === 0 || f === length;
    const weight = (edge ? 1 : 2) / (2 * length);
    for (let t = 0; t < length; t++) {
      // (f·t) mod 2L keeps the angle small, so cos/sin stay accurate for long sequences.
      const angle = (Math.PI * ((f * t) % (2 * length))) / length;
      const i = f * length + t;
      cos[i] = Math.cos(angle);
      sin[i] = edge ? 0 : -Math.sin(angle);
      synthesisCosT[i] = weight * (cos[i] as number);
      synthesisSinT[i] = weight * (sin[i] as number);
    }
  }
  const arrays: Record<BasisMatrix, { values: Float32Array; shape: [number, number] }> = {
    cos: { values: cos, shape: [bins, length] },
    sin: { values: sin, shape: [bins, length] },
    cosT: { values: transposed(cos, bins, length), shape: [length, bins] },
    sinT: { values: transposed(sin, bins, length), shape: [length, bins] },
    synthesisCos: { values: transposed(synthesisCosT, bins, length), shape: [length, bins] },
    synthesisSin: { values: transposed(synthesisSinT, bins, length), shape: [length, bins] },
    synthesisCosT: { values: synthesisCosT, shape: [bins, length] },
    synthesisSinT: { values: synthesisSinT, shape: [bins, length] },
  };
  const basis: DftBasis = { matrix: (name) => tf.tensor2d(arrays[name].values, arrays[name].shape) };
  if (bases.size >= CACHED_BASES) bases.delete(bases.keys().next().value as number);
  bases.set(length, basis);
  return basis;
}

function transposed(values: Float32Array, rows: number, columns: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < columns; c++) out[c * rows + r] = values[r * columns + c] as number;
  }
  return out;
}
