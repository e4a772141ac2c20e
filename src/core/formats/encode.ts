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

export function numberToFloat16Bits(x: number): number {
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
  if (Number.isNaN(x)) return 0x7fc0;
  const v = roundToFloat(x, 7, -126, BF16_MAX);
  // Every bfloat16 value is exactly a float32, so its bits are the float32's top half.
  const bits = new Uint32Array(new Float32Array([v]).buffer)[0];
  return bits >>> 16;
}

/** float64 values → little-endian bytes of `dtype`, rounded once. */
export function encodeFromFloat64(dtype: DType, values: Float64Array): Uint8Array {
  const out = new Uint8Array(values.length * DTYPE_BYTES[dtype]);
  const view = new DataView(out.buffer);
  switch (dtype) {
    case 'float64': new Float64Array(out.buffer).set(values); break;
    case 'float32': new Float32Array(out.buffer).set(values); break;
    case 'float16': values.forEach((v, i) => view.setUint16(2 * i, numberToFloat16Bits(v), true)); break;
    case 'bfloat16': values.forEach((v, i) => view.setUint16(2 * i, numberToBfloat16Bits(v), true)); break;
    default: throw new Error(`cannot write fused weights as ${dtype}`);
  }
  return out;
}
