import { DTYPE_BYTES, type DType } from './tensor';

/** Round-half-to-even of a double to a multiple of `ulp` (a power of two, so scaling is exact). */
function roundToUlp(x: number, ulp: number): number {
  const r = x / ulp;
  const f = Math.floor(r);
  const diff = r - f;
  const n = diff > 0.5 || (diff === 0.5 && f % 2 !== 0) ? f + 1 : f;
  return n * ulp;
}

/**
 * Rounds a double once to a float with `mantissaBits` fraction bits and the given
 * smallest normal exponent; returns ±Infinity past `max`.
 */
function roundToFloat(x: number, mantissaBits: number, minExp: number, max: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const a = Math.abs(x);
  const e = Math.max(Math.floor(Math.log2(a)), minExp);
  // log2 can be off by one near powers of two; the check keeps ulp exact.
  const exp = 2 ** e > a && e > minExp ? e - 1 : e;
  const r = roundToUlp(a, 2 ** (exp - mantissaBits));
  return Math.sign(x) * (r > max ? Infinity : r);
}

const F16_MAX = 65504;
const BF16_MAX = (2 - 2 ** -7) * 2 ** 127;

// Scratch views for reading a double's bits and writing a float32's, shared so no call allocates.
const scratch64 = new Float64Array(1);
const words = new Uint32Array(scratch64.buffer);
const HI = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0;
const scratch32 = new Float32Array(1);
const bits32 = new Uint32Array(scratch32.buffer);

/**
 * The bits of x rounded once (half to even) to a 16-bit float with `mantissaBits` fraction bits
 * and exponent bias `bias`, computed from the double's own bits: the fast path for results in the
 * normal range (every weight, in practice). -1 when x is zero, subnormal, too large, or not finite.
 */
function normalHalfBits(x: number, mantissaBits: number, bias: number): number {
  scratch64[0] = x;
  const hi = words[HI];
  const lo = words[1 - HI];
  const exp = ((hi >>> 20) & 0x7ff) - 1023;
  if (exp < 1 - bias || exp > bias) return -1;
  // The kept fraction bits all lie in the high word (20 of the 52 fraction bits are there).
  const dropped = 20 - mantissaBits;
  const kept = ((exp + bias) << mantissaBits) | ((hi & 0xfffff) >>> dropped);
  const rest = hi & ((1 << dropped) - 1);
  const half = 1 << (dropped - 1);
  const up = rest > half || (rest === half && (lo !== 0 || (kept & 1) === 1));
  // A carry out of the fraction steps the exponent, and past the largest finite value gives infinity.
  return ((hi >>> 31) << 15) | (kept + (up ? 1 : 0));
}

export function numberToFloat16Bits(x: number): number {
  const fast = normalHalfBits(x, 10, 15);
  if (fast >= 0) return fast;
  if (Number.isNaN(x)) return 0x7e00;
  const v = roundToFloat(x, 10, -14, F16_MAX);
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a === Infinity) return sign | 0x7c00;
  if (a < 2 ** -14) return sign | Math.round(a / 2 ** -24);
  const e = Math.floor(Math.log2(a));
  const exp = 2 ** e > a ? e - 1 : e;
  return sign | ((exp + 15) << 10) | Math.round((a / 2 ** exp - 1) * 1024);
}

export function numberToBfloat16Bits(x: number): number {
  const fast = normalHalfBits(x, 7, 127);
  if (fast >= 0) return fast;
  if (Number.isNaN(x)) return 0x7fc0;
  // Every bfloat16 value is exactly a float32, so its bits are the float32's top half.
  scratch32[0] = roundToFloat(x, 7, -126, BF16_MAX);
  return bits32[0] >>> 16;
}

/** float64 values → little-endian bytes of `dtype`, rounded once. */
export function encodeFromFloat64(dtype: DType, values: Float64Array): Uint8Array {
  const out = new Uint8Array(values.length * DTYPE_BYTES[dtype]);
  const view = new DataView(out.buffer);
  switch (dtype) {
    case 'float64':
      new Float64Array(out.buffer).set(values);
      break;
    case 'float32':
      new Float32Array(out.buffer).set(values);
      break;
    case 'float16':
      values.forEach((v, i) => view.setUint16(2 * i, numberToFloat16Bits(v), true));
      break;
    case 'bfloat16':
      values.forEach((v, i) => view.setUint16(2 * i, numberToBfloat16Bits(v), true));
      break;
    default:
      throw new Error(`cannot write fused weights as ${dtype}`);
  }
  return out;
}
