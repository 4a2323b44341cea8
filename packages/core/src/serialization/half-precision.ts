// Conversions between JS numbers and the 16-bit float formats that safetensors files use for
// half-precision weights. Node 20 has no Float16Array, so F16 and BF16 values live in memory as
// Float32Array (every F16 and BF16 value is exactly representable as a float32).

// One shared scratch word lets us read a float32's bits without allocating per element.
const scratchFloat = new Float32Array(1);
const scratchBits = new Uint32Array(scratchFloat.buffer);

function float32Bits(value: number): number {
  scratchFloat[0] = value;
  return scratchBits[0]!;
}

/** Rounds `value` to the nearest IEEE 754 binary16 (ties to even) and returns its 16 bits. */
export function float16BitsFromNumber(value: number): number {
  const bits = float32Bits(value);
  const sign = (bits >>> 16) & 0x8000;
  const float32Exponent = (bits >>> 23) & 0xff;
  const float32Mantissa = bits & 0x7fffff;

  if (float32Exponent === 0xff) {
    // Keep NaN a (quiet) NaN: truncating its payload alone could turn it into an infinity.
    return float32Mantissa === 0 ? sign | 0x7c00 : sign | 0x7e00 | (float32Mantissa >>> 13);
  }

  const halfExponent = float32Exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;

  if (halfExponent <= 0) {
    // The result is subnormal (or zero): a half subnormal is k * 2^-24, and the float32 value is
    // significand * 2^(halfExponent - 38), so k = significand >> (14 - halfExponent), rounded.
    // Below halfExponent -10 the value is under half the smallest subnormal and rounds to zero.
    if (halfExponent < -10) return sign;
    const significand = float32Mantissa | 0x800000;
    return sign | roundShiftRightToEven(significand, 14 - halfExponent);
  }

  // A carry out of the mantissa correctly bumps the exponent, up to infinity (0x7c00).
  return sign | ((halfExponent << 10) + roundShiftRightToEven(float32Mantissa, 13));
}

/** `value >> shift`, rounded to nearest with ties to even, for 1 <= shift <= 24. */
function roundShiftRightToEven(value: number, shift: number): number {
  const kept = value >>> shift;
  const dropped = value & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  const roundUp = dropped > halfway || (dropped === halfway && (kept & 1) === 1);
  return roundUp ? kept + 1 : kept;
}

export function numberFromFloat16Bits(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** Rounds `value` to the nearest bfloat16 (ties to even) and returns its 16 bits. */
export function bfloat16BitsFromNumber(value: number): number {
  const bits = float32Bits(value);
  if (Number.isNaN(value)) return ((bits >>> 16) | 0x0040) & 0xffff;
  // bfloat16 is the top half of a float32, so rounding is adding just under half an ulp of the
  // kept part, plus one more when the kept part is odd; overflow carries into infinity.
  const rounded = bits + 0x7fff + ((bits >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

export function numberFromBfloat16Bits(bits: number): number {
  scratchBits[0] = (bits & 0xffff) << 16;
  return scratchFloat[0]!;
}
