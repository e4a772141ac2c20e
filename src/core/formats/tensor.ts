import type { ByteReader } from './byteReader';
import { ModelFormatError } from './errors';

export type DType = 'float64' | 'float32' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  float64: 8,
  float32: 4,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

export function isFloatDType(dtype: DType): boolean {
  return dtype === 'float64' || dtype === 'float32' || dtype === 'float16' || dtype === 'bfloat16';
}

/** Number of elements of a shape; throws on products that are not safe integers (hostile headers). */
export function numelOf(shape: readonly number[], file = '<tensor>'): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new ModelFormatError(file, `invalid dimension ${d} in shape [${shape.join(', ')}]`);
    n *= d;
    if (!Number.isSafeInteger(n)) throw new ModelFormatError(file, `shape [${shape.join(', ')}] is too large`);
  }
  return n;
}

/**
 * A named tensor whose bytes stay in the file until asked for.
 * `readBytes` returns the elements contiguous, row-major, little-endian.
 */
export class Tensor {
  readonly numel: number;
  readonly byteLength: number;

  constructor(
    readonly name: string,
    readonly dtype: DType,
    readonly shape: readonly number[],
    private readonly load: () => Promise<Uint8Array>,
    /**
     * The CRC-32 that `readBytes` has checked its bytes against (a zip record read whole), so a
     * caller that needs their checksum can take it instead of computing it a second time.
     */
    readonly checkedCrc32?: number,
    /** Its bytes in pieces straight from the file, where the file allows (see `reader`). */
    private readonly openReader?: () => ByteReader | undefined,
  ) {
    this.numel = numelOf(shape, name);
    this.byteLength = this.numel * DTYPE_BYTES[dtype];
  }

  async readBytes(): Promise<Uint8Array> {
    const bytes = await this.load();
    if (bytes.length !== this.byteLength) {
      throw new ModelFormatError(this.name, `expected ${this.byteLength} bytes, got ${bytes.length}`);
    }
    return bytes;
  }

  /**
   * Its bytes front to back in pieces (see ByteReader for who may write to them). Read from the file piece
   * by piece where it allows (a stored zip record, whose CRC-32 is checked with its last piece; a
   * safetensors range); otherwise read whole once and handed out in copies.
   */
  reader(): ByteReader {
    const inPieces = this.openReader?.();
    let at = 0;
    let whole: Promise<Uint8Array> | undefined;
    return {
      next: async (length) => {
        const start = at;
        if (start + length > this.byteLength)
          throw new ModelFormatError(this.name, `read of ${length} bytes at ${start} runs past its ${this.byteLength} bytes`);
        at += length;
        if (inPieces) return inPieces.next(length);
        if (start === 0 && length === this.byteLength) return this.readBytes();
        whole ??= this.readBytes();
        return (await whole).slice(start, start + length);
      },
    };
  }

  /** Its exact values, as `toNumbers` gives them, front to back: `count` elements at a time. */
  valueReader(): { next(count: number): Promise<Float32Array | Float64Array> } {
    const bytes = this.reader();
    const size = DTYPE_BYTES[this.dtype];
    return { next: async (count) => numbersOf(this.dtype, await bytes.next(count * size)) };
  }

  async toFloat64(): Promise<Float64Array> {
    return decodeToFloat64(this.dtype, await this.readBytes());
  }

  /**
   * Exact values in the smallest float array that holds them: float32 for float32, float16
   * and bfloat16 (both are subsets of float32), float64 for everything else.
   */
  async toNumbers(): Promise<Float32Array | Float64Array> {
    return numbersOf(this.dtype, await this.readBytes());
  }

  async toFloat32(): Promise<Float32Array> {
    return float32Of(this.dtype, await this.readBytes());
  }
}

function numbersOf(dtype: DType, bytes: Uint8Array): Float32Array | Float64Array {
  return dtype === 'float32' || dtype === 'float16' || dtype === 'bfloat16' ? float32Of(dtype, bytes) : decodeToFloat64(dtype, bytes);
}

function float32Of(dtype: DType, bytes: Uint8Array): Float32Array {
  if (dtype === 'float32') {
    const b = copyAligned(bytes);
    return new Float32Array(b.buffer, b.byteOffset, b.length / 4);
  }
  if (dtype === 'float16' || dtype === 'bfloat16') return decodeHalfToFloat32(dtype, bytes);
  return Float32Array.from(decodeToFloat64(dtype, bytes));
}

/**
 * Typed-array views need aligned offsets; a copy is cheaper than reasoning about each caller.
 * (The Uint8Array constructor copies; Buffer#slice would only make another view.)
 */
function copyAligned(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset % 8 === 0 ? bytes : new Uint8Array(bytes);
}

export function float16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

export function bfloat16ToNumber(b: number): number {
  const f = new Float32Array(new Uint32Array([b << 16]).buffer);
  return f[0];
}

let halfTables: { float16: Float32Array; bfloat16: Float32Array } | undefined;

/** 16-bit floats through a 65,536-entry table: exact, and far faster than decoding each element. */
function decodeHalfToFloat32(dtype: 'float16' | 'bfloat16', raw: Uint8Array): Float32Array {
  halfTables ??= {
    float16: Float32Array.from({ length: 0x10000 }, (_, h) => float16ToNumber(h)),
    bfloat16: new Float32Array(Uint32Array.from({ length: 0x10000 }, (_, h) => h << 16).buffer),
  };
  const table = halfTables[dtype];
  const aligned = copyAligned(raw);
  const bits = new Uint16Array(aligned.buffer, aligned.byteOffset, aligned.length / 2);
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]];
  return out;
}

export function decodeToFloat64(dtype: DType, raw: Uint8Array): Float64Array {
  const bytes = copyAligned(raw);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.byteLength / DTYPE_BYTES[dtype];
  const out = new Float64Array(n);
  switch (dtype) {
    case 'float64':
      out.set(new Float64Array(bytes.buffer, bytes.byteOffset, n));
      break;
    case 'float32':
      out.set(new Float32Array(bytes.buffer, bytes.byteOffset, n));
      break;
    case 'float16':
      for (let i = 0; i < n; i++) out[i] = float16ToNumber(view.getUint16(2 * i, true));
      break;
    case 'bfloat16':
      for (let i = 0; i < n; i++) out[i] = bfloat16ToNumber(view.getUint16(2 * i, true));
      break;
    case 'int64':
      for (let i = 0; i < n; i++) out[i] = Number(view.getBigInt64(8 * i, true));
      break;
    case 'int32':
      out.set(new Int32Array(bytes.buffer, bytes.byteOffset, n));
      break;
    case 'int16':
      out.set(new Int16Array(bytes.buffer, bytes.byteOffset, n));
      break;
    case 'int8':
      out.set(new Int8Array(bytes.buffer, bytes.byteOffset, n));
      break;
    case 'uint8':
    case 'bool':
      out.set(bytes);
      break;
  }
  return out;
}
