import type { DType } from '../formats/tensor';

/** torch's storage class for each element type, as a persistent id names it. */
export const STORAGE_TYPES: Record<DType, string> = {
  float64: 'DoubleStorage',
  float32: 'FloatStorage',
  float16: 'HalfStorage',
  bfloat16: 'BFloat16Storage',
  int64: 'LongStorage',
  int32: 'IntStorage',
  int16: 'ShortStorage',
  int8: 'CharStorage',
  uint8: 'ByteStorage',
  bool: 'BoolStorage',
};

/** The pickle opcodes RepLens writes: protocol 2, plus NEWOBJ_EX for an object the input made with keyword arguments. */
export const OP = {
  PROTO: 0x80,
  STOP: 0x2e,
  MARK: 0x28,
  GLOBAL: 0x63,
  REDUCE: 0x52,
  NEWOBJ: 0x81,
  NEWOBJ_EX: 0x92,
  BUILD: 0x62,
  EMPTY_TUPLE: 0x29,
  TUPLE: 0x74,
  EMPTY_LIST: 0x5d,
  APPENDS: 0x65,
  EMPTY_DICT: 0x7d,
  SETITEMS: 0x75,
  BINUNICODE: 0x58,
  BINBYTES: 0x42,
  BININT1: 0x4b,
  BININT2: 0x4d,
  BININT: 0x4a,
  LONG1: 0x8a,
  BINFLOAT: 0x47,
  NONE: 0x4e,
  NEWTRUE: 0x88,
  NEWFALSE: 0x89,
  BINPERSID: 0x51,
  LONG_BINPUT: 0x72,
  LONG_BINGET: 0x6a,
} as const;

/** Appends opcodes and their arguments; `build()` returns the bytes. */
export class PickleBuilder {
  private parts = new Uint8Array(1 << 16);
  private length = 0;
  private readonly encoder = new TextEncoder();

  op(code: number): this {
    return this.bytes([code]);
  }

  global(module: string, name: string): this {
    return this.op(OP.GLOBAL).raw(this.encoder.encode(`${module}\n${name}\n`));
  }

  str(s: string): this {
    const bytes = this.encoder.encode(s);
    return this.op(OP.BINUNICODE).u32(bytes.length).raw(bytes);
  }

  binary(b: Uint8Array): this {
    return this.op(OP.BINBYTES).u32(b.length).raw(b);
  }

  int(n: number | bigint): this {
    if (typeof n === 'number' && n >= 0 && n < 0x100) return this.bytes([OP.BININT1, n]);
    if (typeof n === 'number' && n >= 0 && n < 0x10000) return this.bytes([OP.BININT2, n & 0xff, n >> 8]);
    if (typeof n === 'number' && n >= -0x80000000 && n < 0x80000000) return this.op(OP.BININT).u32(n >>> 0);
    // LONG1: little-endian two's complement, minimal length
    let v = BigInt(n);
    const out: number[] = [];
    while (true) {
      const byte = Number(v & 0xffn);
      out.push(byte);
      v >>= 8n;
      if ((v === 0n && (byte & 0x80) === 0) || (v === -1n && (byte & 0x80) !== 0)) break;
    }
    return this.bytes([OP.LONG1, out.length, ...out]);
  }

  float(x: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, x, false);
    return this.op(OP.BINFLOAT).raw(b);
  }

  tuple(items: readonly number[]): this {
    this.op(OP.MARK);
    for (const i of items) this.int(i);
    return this.op(OP.TUPLE);
  }

  /** Memo slot `i` (4-byte index, so any number of objects). */
  put(i: number): this {
    return this.op(OP.LONG_BINPUT).u32(i);
  }

  get(i: number): this {
    return this.op(OP.LONG_BINGET).u32(i);
  }

  /**
   * torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, OrderedDict()),
   * the storage named by persistent id ('storage', torch.<Type>Storage, key, 'cpu', numel).
   */
  tensor(storage: { type: string; key: string; numel: number }, offset: number, shape: readonly number[], stride: readonly number[]): this {
    this.global('torch._utils', '_rebuild_tensor_v2').op(OP.MARK);
    this.op(OP.MARK).str('storage').global('torch', storage.type).str(storage.key).str('cpu').int(storage.numel).op(OP.TUPLE).op(OP.BINPERSID);
    this.int(offset).tuple(shape).tuple(stride).op(OP.NEWFALSE);
    this.global('collections', 'OrderedDict').op(OP.EMPTY_TUPLE).op(OP.REDUCE);
    return this.op(OP.TUPLE).op(OP.REDUCE);
  }

  private u32(n: number): this {
    return this.bytes([n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff]);
  }

  private bytes(b: readonly number[]): this {
    return this.raw(b);
  }

  private raw(b: ArrayLike<number>): this {
    if (this.length + b.length > this.parts.length) {
      const grown = new Uint8Array(Math.max(this.parts.length * 2, this.length + b.length));
      grown.set(this.parts.subarray(0, this.length));
      this.parts = grown;
    }
    this.parts.set(b, this.length);
    this.length += b.length;
    return this;
  }

  build(): Uint8Array {
    return this.parts.slice(0, this.length);
  }
}

/** Row-major strides of a contiguous tensor. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}
