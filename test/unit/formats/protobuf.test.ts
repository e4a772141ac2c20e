import { describe, expect, it } from 'vitest';
import { MemoryByteSource } from '../../../src/core/formats/byteSource';
import { ModelFormatError } from '../../../src/core/formats/errors';
import { decodeInto, MAX_DEPTH, ProtoReader, ProtoWriter, Wire, type FieldSpecs } from '../../../src/core/formats/protobuf';

const bytes = (...b: number[]) => new Uint8Array(b);
const reader = (b: Uint8Array) => new ProtoReader('test.bin', b);

async function encoded(build: (w: ProtoWriter) => void): Promise<number[]> {
  const w = new ProtoWriter();
  build(w);
  return Array.from(await w.finish());
}

function expectFormatError(f: () => unknown, pattern: RegExp): void {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ModelFormatError);
    expect((e as ModelFormatError).file).toBe('test.bin');
    expect((e as Error).message).toMatch(pattern);
    return;
  }
  throw new Error('expected a ModelFormatError');
}

describe('ProtoReader varints', () => {
  it('decodes the examples of the protobuf encoding guide', () => {
    expect(reader(bytes(0x96, 0x01)).uint()).toBe(150);
    expect(reader(bytes(0xac, 0x02)).uint()).toBe(300);
    expect(reader(bytes(0x00)).uint()).toBe(0);
  });

  it('reads negative int64 and int32 from their 10-byte sign-extended form', () => {
    const minusOne = bytes(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01);
    expect(reader(minusOne).int64()).toBe(-1n);
    expect(reader(minusOne).int32()).toBe(-1);
    expect(reader(minusOne).uint64()).toBe(2n ** 64n - 1n);
    expect(reader(minusOne).int64Number()).toBe(-1);
  });

  it('keeps all 64 bits of INT64_MAX', () => {
    const max = bytes(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f);
    expect(reader(max).int64()).toBe(2n ** 63n - 1n);
  });

  it('rejects values that a JS number cannot hold where a number is required', () => {
    const max = bytes(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f);
    expectFormatError(() => reader(max).uint(), /value too large at byte 0/);
    expectFormatError(() => reader(max).int64Number(), /out of range/);
    // 2^53 - 1 is the largest accepted.
    expect(reader(bytes(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f)).uint()).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('rejects truncated, overlong and overflowing varints', () => {
    expectFormatError(() => reader(bytes(0x80, 0x80)).uint(), /truncated varint at byte 0/);
    expectFormatError(() => reader(new Uint8Array(11).fill(0x80)).int64(), /longer than 10 bytes/);
    expectFormatError(() => reader(bytes(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02)).int64(), /exceeds 64 bits/);
  });
});

describe('ProtoReader fields', () => {
  it('reads tags, and rejects field 0 and group wire types', () => {
    expect(reader(bytes(0x08)).tag()).toEqual({ field: 1, wire: Wire.Varint });
    expect(reader(bytes(0xa2, 0x06)).tag()).toEqual({ field: 100, wire: Wire.Len });
    expectFormatError(() => reader(bytes(0x02)).tag(), /field number 0/);
    for (const wire of [3, 4, 6, 7]) expectFormatError(() => reader(bytes(0x08 | wire)).skip(wire), /unsupported wire type/);
  });

  it('bounds every length by the enclosing message, not the buffer', () => {
    // An outer message of 3 bytes holding a field that claims 5.
    const buf = bytes(0x0a, 0x03, 0x12, 0x05, 0x61, 0x62, 0x63, 0x64, 0x65);
    const outer = reader(buf);
    outer.tag();
    const inner = outer.message();
    inner.tag();
    expectFormatError(() => inner.bytes(), /truncated: field needs 5 bytes, 1 left at byte 4/);
  });

  it('fails fast on a length of 2^50 instead of allocating', () => {
    const buf = bytes(0x0a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02);
    const r = reader(buf);
    r.tag();
    expectFormatError(() => r.bytes(), /truncated/);
  });

  it('reports file offsets when the buffer is a piece of the file', () => {
    const r = new ProtoReader('test.bin', bytes(0x80), 0, 1, 0, 1000);
    expectFormatError(() => r.uint(), /at byte 1000/);
  });

  it('reads fixed-width floats little-endian', () => {
    expect(reader(bytes(0x00, 0x00, 0xc0, 0x3f)).float()).toBe(1.5);
    expect(reader(bytes(0, 0, 0, 0, 0, 0, 0xf8, 0x3f)).double()).toBe(1.5);
    expectFormatError(() => reader(bytes(0, 0, 0)).float(), /truncated/);
  });

  it('accepts repeated scalars both packed and one per tag', () => {
    const out: bigint[] = [];
    const r = reader(bytes(0x08, 0x01, 0x0a, 0x02, 0x02, 0x03, 0x08, 0x04));
    while (!r.done) {
      const { wire } = r.tag();
      r.repeated(wire, (x) => x.int64(), out);
    }
    expect(out).toEqual([1n, 2n, 3n, 4n]);
  });

  it('stops at MAX_DEPTH nested messages', async () => {
    interface Nest {
      child?: Nest;
      unknownFields?: Uint8Array[];
    }
    const specs: FieldSpecs<Nest> = {
      1: [
        Wire.Len,
        (m, r) => {
          m.child = decodeInto(r.message(), {}, specs);
        },
      ],
    };
    const nest = async (levels: number) => {
      let payload: Uint8Array = new Uint8Array(0);
      for (let i = 0; i < levels; i++) {
        const w = new ProtoWriter();
        w.bytes(1, payload);
        payload = await w.finish();
      }
      return payload;
    };
    const ok = await nest(MAX_DEPTH);
    expect(() => decodeInto(reader(ok), {}, specs)).not.toThrow();
    const tooDeep = await nest(MAX_DEPTH + 1);
    expectFormatError(() => decodeInto(reader(tooDeep), {}, specs), /nested deeper than 64/);
  });
});

describe('decodeInto', () => {
  interface Msg {
    a?: number;
    s?: string;
    unknownFields?: Uint8Array[];
  }
  const specs: FieldSpecs<Msg> = {
    1: [
      Wire.Varint,
      (m, r) => {
        m.a = r.int32();
      },
    ],
    2: [
      Wire.Len,
      (m, r) => {
        m.s = r.string();
      },
    ],
  };

  it('keeps unknown fields and known fields with an unexpected wire type as raw bytes', () => {
    // a=7, field 9 varint 5, s='hi', field 1 as fixed32 (wrong wire type), field 10 bytes 'z'
    const buf = bytes(0x08, 0x07, 0x48, 0x05, 0x12, 0x02, 0x68, 0x69, 0x0d, 1, 2, 3, 4, 0x52, 0x01, 0x7a);
    const m: Msg = decodeInto<Msg>(reader(buf), {}, specs);
    expect(m.a).toBe(7);
    expect(m.s).toBe('hi');
    expect(m.unknownFields?.map((u) => Array.from(u))).toEqual([
      [0x48, 0x05],
      [0x0d, 1, 2, 3, 4],
      [0x52, 0x01, 0x7a],
    ]);
  });

  it('leaves unknownFields undefined when there are none', () => {
    expect(decodeInto(reader(bytes(0x08, 0x07)), {}, specs)).toEqual({ a: 7 });
  });
});

describe('ProtoWriter', () => {
  it('encodes varints like protobuf, negative ints as 10 bytes', async () => {
    expect(await encoded((w) => w.int(1, 150))).toEqual([0x08, 0x96, 0x01]);
    expect(await encoded((w) => w.int(1, -1))).toEqual([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    expect(await encoded((w) => w.int(1, 2n ** 63n - 1n))).toEqual([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
    expect(await encoded((w) => w.int(1, 2 ** 40))).toEqual([0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20]);
    expect(await encoded((w) => w.int(16, 1))).toEqual([0x80, 0x01, 0x01]);
  });

  it('round-trips through the reader', async () => {
    const values = [0n, 1n, 127n, 128n, -1n, -(2n ** 63n), 2n ** 63n - 1n, 123456789012345n];
    const w = new ProtoWriter();
    for (const v of values) w.int(8, v);
    const r = reader(await w.finish());
    const out: bigint[] = [];
    while (!r.done) out.push((r.tag(), r.int64()));
    expect(out).toEqual(values);
  });

  it('writes strings, floats and nested messages with their lengths', async () => {
    const inner = new ProtoWriter();
    inner.string(1, 'é');
    inner.float(2, 1.5);
    expect(inner.length).toBe(2 + 2 + 5);
    expect(await encoded((w) => w.message(3, inner))).toEqual([0x1a, 0x09, 0x0a, 0x02, 0xc3, 0xa9, 0x15, 0x00, 0x00, 0xc0, 0x3f]);
  });

  it('writes packed fields only when non-empty', async () => {
    expect(await encoded((w) => w.packedInts(5, []))).toEqual([]);
    expect(await encoded((w) => w.packedInts(5, [1, -1n, 300]))).toEqual([
      0x2a, 0x0d, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0xac, 0x02,
    ]);
    expect(await encoded((w) => w.packedFloats(4, [1.5]))).toEqual([0x22, 0x04, 0x00, 0x00, 0xc0, 0x3f]);
    expect(await encoded((w) => w.packedDoubles(10, [1.5]))).toEqual([0x52, 0x08, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f]);
  });

  it('refers to source slices and large arrays instead of copying them, and reads slices at finish', async () => {
    const fileBytes = new Uint8Array(100_000).map((_, i) => i % 251);
    const source = new MemoryByteSource('src.bin', fileBytes);
    const big = new Uint8Array(200_000).fill(7);
    const tensor = new ProtoWriter();
    tensor.bytes(9, { source, offset: 10, length: 50_000 });
    tensor.bytes(9, big);
    const w = new ProtoWriter();
    w.message(5, tensor);
    const parts = w.finishParts();
    expect(parts.some((p) => !(p instanceof Uint8Array))).toBe(true);
    expect(parts).toContain(big);
    const out = await w.finish();
    expect(out.length).toBe(w.length);
    const r = reader(out);
    r.tag();
    const t = r.message();
    t.tag();
    expect(Buffer.from(t.bytes()).equals(fileBytes.subarray(10, 50_010))).toBe(true);
    t.tag();
    expect(Buffer.from(t.bytes()).equals(big)).toBe(true);
  });

  it('appends raw bytes unchanged', async () => {
    expect(
      await encoded((w) => {
        w.int(1, 1);
        w.raw(bytes(0x48, 0x05));
      }),
    ).toEqual([0x08, 0x01, 0x48, 0x05]);
  });
});
