import type { DType } from '../formats/tensor';

/**
 * Pickles a state dict the way torch.save lays it out, using only protocol-2 opcodes
 * and the three globals that torch's weights-only unpickler accepts. Storages are
 * referenced by persistent id and written as separate records.
 */

const STORAGE_TYPES: Record<DType, string> = {
  float64: 'DoubleStorage', float32: 'FloatStorage', float16: 'HalfStorage', bfloat16: 'BFloat16Storage',
  int64: 'LongStorage', int32: 'IntStorage', int16: 'ShortStorage', int8: 'CharStorage', uint8: 'ByteStorage', bool: 'BoolStorage',
};

export interface PickledTensor {
  name: string;
  dtype: DType;
  shape: readonly number[];
  /** Storage record key ('0', '1', ...). */
  key: string;
}

const OP = {
  PROTO: 0x80, GLOBAL: 0x63, EMPTY_TUPLE: 0x29, REDUCE: 0x52, MARK: 0x28, SETITEMS: 0x75, TUPLE: 0x74,
  BINUNICODE: 0x58, BININT1: 0x4b, BININT2: 0x4d, BININT: 0x4a, LONG1: 0x8a, NEWFALSE: 0x89, BINPERSID: 0x51, STOP: 0x2e,
} as const;

class PickleBuilder {
  private readonly parts: number[] = [];
  private readonly encoder = new TextEncoder();

  op(code: number): this {
    this.parts.push(code);
    return this;
  }

  global(module: string, name: string): this {
    this.op(OP.GLOBAL);
    for (const b of this.encoder.encode(`${module}\n${name}\n`)) this.parts.push(b);
    return this;
  }

  str(s: string): this {
    const bytes = this.encoder.encode(s);
    this.op(OP.BINUNICODE).u32(bytes.length);
    for (const b of bytes) this.parts.push(b);
    return this;
  }

  int(n: number): this {
    if (n >= 0 && n < 0x100) return this.op(OP.BININT1).bytes([n]);
    if (n >= 0 && n < 0x10000) return this.op(OP.BININT2).bytes([n & 0xff, n >> 8]);
    if (n >= -0x80000000 && n < 0x80000000) return this.op(OP.BININT).u32(n >>> 0);
    // LONG1: little-endian two's complement, minimal length
    let v = BigInt(n);
    const out: number[] = [];
    while (true) {
      const byte = Number(v & 0xffn);
      out.push(byte);
      v >>= 8n;
      if ((v === 0n && (byte & 0x80) === 0) || (v === -1n && (byte & 0x80) !== 0)) break;
    }
    return this.op(OP.LONG1).bytes([out.length, ...out]);
  }

  tuple(items: readonly number[]): this {
    this.op(OP.MARK);
    for (const i of items) this.int(i);
    return this.op(OP.TUPLE);
  }

  private u32(n: number): this {
    return this.bytes([n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff]);
  }

  private bytes(b: readonly number[]): this {
    for (const x of b) this.parts.push(x);
    return this;
  }

  build(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

export function pickleStateDict(tensors: readonly PickledTensor[]): Uint8Array {
  const p = new PickleBuilder();
  p.op(OP.PROTO).op(2);
  p.global('collections', 'OrderedDict').op(OP.EMPTY_TUPLE).op(OP.REDUCE);
  p.op(OP.MARK);
  for (const t of tensors) {
    const numel = t.shape.reduce((a, b) => a * b, 1);
    p.str(t.name);
    p.global('torch._utils', '_rebuild_tensor_v2');
    p.op(OP.MARK);
    // persistent id: ('storage', torch.<Type>Storage, key, location, numel)
    p.op(OP.MARK).str('storage').global('torch', STORAGE_TYPES[t.dtype]).str(t.key).str('cpu').int(numel).op(OP.TUPLE).op(OP.BINPERSID);
    p.int(0);
    p.tuple(t.shape);
    p.tuple(contiguousStrides(t.shape));
    p.op(OP.NEWFALSE);
    p.global('collections', 'OrderedDict').op(OP.EMPTY_TUPLE).op(OP.REDUCE);
    p.op(OP.TUPLE).op(OP.REDUCE);
  }
  p.op(OP.SETITEMS);
  p.op(OP.STOP);
  return p.build();
}
