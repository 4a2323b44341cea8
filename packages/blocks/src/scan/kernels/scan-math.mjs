// The arithmetic of the fused scan kernels, in plain JavaScript so that the same functions run on
// the main thread and inside the kernel worker threads (a worker loads this file natively,
// without a TypeScript loader). Every function works on one slice of channels, [start, end),
// and writes only that slice's outputs, so threads never write the same element.
// Types: scan-math.d.mts.

const INV_LN2 = Math.LOG2E;
// ln 2 split in two so that k·LN2_HI is exact for |k| < 2^20 (Cody–Waite reduction).
const LN2_HI = 0.6931471803691238;
const LN2_LO = 1.9082149292705877e-10;
/** 2^−j for j = 0 … 1024. */
const NEGATIVE_POWERS_OF_TWO = Float64Array.from({ length: 1025 }, (_, j) => 2 ** -j);

/**
 * exp(x), specialised for the decays exp(Δ·A) with Δ > 0 and A < 0, i.e. x ≤ 0: x = k·ln 2 + r
 * with |r| ≤ ln 2/2, e^r by its degree-7 Taylor polynomial (relative error < 1e-8, far below
 * float32's 6e-8) and 2^k from a table. About 2.4× faster than Math.exp in V8, which dominates
 * the scan; positive x (not produced by Mamba) goes to Math.exp.
 */
function expNonPositive(x) {
  if (x > 0) return Math.exp(x);
  if (x < -700) return 0;
  const k = (x * INV_LN2 - 0.5) | 0;
  const r = x - k * LN2_HI - k * LN2_LO;
  const er = 1 + r * (1 + r * (0.5 + r * (1 / 6 + r * (1 / 24 + r * (1 / 120 + r * (1 / 720 + r * (1 / 5040)))))));
  return er * NEGATIVE_POWERS_OF_TWO[-k];
}

/** Channels per block in the selective scan's backward pass: the block's recomputed states stay in cache. */
const CHANNEL_BLOCK = 8;

/**
 * Mamba's selective scan (docs/design.md#mamba) forward for channels d ∈ [start, end):
 *   h_t = exp(Δ_t A) ⊙ h_{t−1} + Δ_t x_t B_t,   y_t = h_t · C_t.
 * The state is carried in float64.
 */
export function selectiveScanForward(arrays, dims, start, end) {
  const { x, dt, a, b, c, y } = arrays;
  const { batch, length, dInner, dState } = dims;
  const h = new Float64Array((end - start) * dState);
  for (let bi = 0; bi < batch; bi++) {
    h.fill(0);
    for (let t = 0; t < length; t++) {
      const row = bi * length + t;
      const bcRow = row * dState;
      for (let d = start; d < end; d++) {
        const index = row * dInner + d;
        const delta = dt[index];
        const drive = delta * x[index];
        const aRow = d * dState;
        const hRow = (d - start) * dState;
        let out = 0;
        for (let n = 0; n < dState; n++) {
          const next = expNonPositive(delta * a[aRow + n]) * h[hRow + n] + drive * b[bcRow + n];
          h[hRow + n] = next;
          out += next * c[bcRow + n];
        }
        y[index] = out;
      }
    }
  }
}

/**
 * The selective scan's backward pass for channels d ∈ [start, end). Nothing is saved by the
 * forward pass: each block of channels recomputes its states and decays for one sequence (a few
 * hundred KiB, which stay in cache), then walks back in time with
 *   g_t = gy_t C_t + exp(Δ_{t+1} A) g_{t+1}.
 * dx, ddt and the rows [start, end) of da are written; the B and C gradients, which sum over every
 * channel, are added to this slice's own float64 partial sums dbPartial and dcPartial.
 */
export function selectiveScanBackward(arrays, dims, start, end) {
  const { x, dt, a, b, c, dy, dx, ddt, da, dbPartial, dcPartial } = arrays;
  const { batch, length, dInner, dState } = dims;
  const blockWidth = Math.min(CHANNEL_BLOCK, end - start);
  const stride = blockWidth * dState;
  const states = new Float64Array(length * stride);
  const decays = new Float64Array(length * stride);
  const gh = new Float64Array(stride);
  const gA = new Float64Array(stride);
  for (let blockStart = start; blockStart < end; blockStart += CHANNEL_BLOCK) {
    const width = Math.min(CHANNEL_BLOCK, end - blockStart);
    gA.fill(0);
    for (let bi = 0; bi < batch; bi++) {
      for (let t = 0; t < length; t++) {
        const row = bi * length + t;
        const bcRow = row * dState;
        for (let k = 0; k < width; k++) {
          const index = row * dInner + blockStart + k;
          const delta = dt[index];
          const drive = delta * x[index];
          const aRow = (blockStart + k) * dState;
          const base = t * stride + k * dState;
          for (let n = 0; n < dState; n++) {
            const decay = expNonPositive(delta * a[aRow + n]);
            const previous = t > 0 ? states[base - stride + n] : 0;
            decays[base + n] = decay;
            states[base + n] = decay * previous + drive * b[bcRow + n];
          }
        }
      }
      gh.fill(0);
      for (let t = length - 1; t >= 0; t--) {
        const row = bi * length + t;
        const bcRow = row * dState;
        for (let k = 0; k < width; k++) {
          const index = row * dInner + blockStart + k;
          const delta = dt[index];
          const xValue = x[index];
          const gy = dy[index];
          const aRow = (blockStart + k) * dState;
          const base = t * stride + k * dState;
          const carry = k * dState;
          let gDelta = 0;
          let gX = 0;
          for (let n = 0; n < dState; n++) {
            const bValue = b[bcRow + n];
            const decay = decays[base + n];
            const previous = t > 0 ? states[base - stride + n] : 0;
            const g = gh[carry + n] + gy * c[bcRow + n];
            dcPartial[bcRow + n] += gy * states[base + n];
            dbPartial[bcRow + n] += g * delta * xValue;
            const decayTerm = g * decay * previous;
            gDelta += a[aRow + n] * decayTerm + g * xValue * bValue;
            gX += g * delta * bValue;
            gA[carry + n] += delta * decayTerm;
            gh[carry + n] = g * decay;
          }
          ddt[index] = gDelta;
          dx[index] = gX;
        }
      }
    }
    for (let k = 0; k < width; k++) {
      for (let n = 0; n < dState; n++) da[(blockStart + k) * dState + n] = gA[k * dState + n];
    }
  }
}

/** h_t = a_t ⊙ h_{t−1} + b_t over features f ∈ [start, end) of [B, L, F]; the carry is float64. */
export function linearRecurrenceForward(arrays, dims, start, end) {
  const { a, b, h } = arrays;
  const { batch, length, features } = dims;
  const carry = new Float64Array(end - start);
  for (let bi = 0; bi < batch; bi++) {
    carry.fill(0);
    for (let t = 0; t < length; t++) {
      const row = (bi * length + t) * features;
      for (let f = start; f < end; f++) {
        const next = a[row + f] * carry[f - start] + b[row + f];
        carry[f - start] = next;
        h[row + f] = next;
      }
    }
  }
}

/**
 * Reverse time: with g_t = ∂loss/∂h_t through every path, g_t = dy_t + a_{t+1} g_{t+1};
 * then ∂/∂b_t = g_t and ∂/∂a_t = g_t h_{t−1}.
 */
export function linearRecurrenceBackward(arrays, dims, start, end) {
  const { a, h, dy, da, db } = arrays;
  const { batch, length, features } = dims;
  const fromFuture = new Float64Array(end - start);
  for (let bi = 0; bi < batch; bi++) {
    fromFuture.fill(0);
    for (let t = length - 1; t >= 0; t--) {
      const row = (bi * length + t) * features;
      for (let f = start; f < end; f++) {
        const g = dy[row + f] + fromFuture[f - start];
        db[row + f] = g;
        da[row + f] = t > 0 ? g * h[row - features + f] : 0;
        fromFuture[f - start] = g * a[row + f];
      }
    }
  }
}

/** The functions a kernel worker can be asked to run, by name. */
export const SCAN_ROUTINES = {
  selectiveScanForward,
  selectiveScanBackward,
  linearRecurrenceForward,
  linearRecurrenceBackward,
};
