import type { ByteSource } from './byteSource';
import { ModelFormatError } from './errors';

/** Protobuf wire types; groups (3, 4) are deprecated and no ONNX field uses them. */
export const Wire = { Varint: 0, Fixed64: 1, Len: 2, Fixed32: 5 } as const;

/** Hostile files can nest messages without end; real ONNX graphs nest a few levels per subgraph. */
export const MAX_DEPTH = 64;

const TWO_32 = 2 ** 32;

const utf8 = new TextDecoder('utf-8');
const utf8Encoder = new TextEncoder();

/**
 * Reads one message's fields from `buf[start, end)`. `base` is where `buf[0]` sits in the file,
 * so error messages give file offsets even when `buf` is only a piece read from the file.
 */
export class ProtoReader {
  pos: number;
  // Last varint as two 32-bit halves: avoids a bigint for every varint while staying exact to 64 bits.
  private lo = 0;
  private hi = 0;

  constructor(
    readonly file: string,
    readonly buf: Uint8Array,
    start = 0,
    readonly end = buf.length,
    readonly depth = 0,
    readonly base = 0,
  ) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  fail(reason: string, at = this.pos): never {
    throw new ModelFormatError(this.file, `${reason} at byte ${this.base + at}`);
  }

  private readVarintParts(): void {
    let lo = 0;
    let hi = 0;
    const start = this.pos;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail('truncated varint', start);
      const b = this.buf[this.pos++];
      if (i < 4) lo |= (b & 0x7f) << (7 * i);
      else if (i === 4) {
        lo |= (b & 0x0f) << 28;
        hi = (b & 0x7f) >> 4;
      } else hi |= (b & 0x7f) << (7 * i - 32);
      if (b < 0x80) {
        // The 10th byte may only carry bit 63.
        if (i === 9 && b > 1) this.fail('varint exceeds 64 bits', start);
        this.lo = lo >>> 0;
        this.hi = hi >>> 0;
        return;
      }
    }
    this.fail('varint longer than 10 bytes', start);
  }

  /** A field tag; field 0 never occurs in valid data and usually means we are reading garbage. */
  tag(): { field: number; wire: number } {
    const at = this.pos;
    this.readVarintParts();
    if (this.hi !== 0) this.fail('field number out of range', at);
    const field = this.lo >>> 3;
    if (field === 0) this.fail('invalid field number 0', at);
    return { field, wire: this.lo & 7 };
  }

  /** An unsigned varint that must fit a JS number exactly (lengths, offsets, counts). */
  uint(): number {
    const at = this.pos;
    this.readVarintParts();
    if (this.hi >= 2 ** 21) this.fail('value too large', at);
    return this.hi * TWO_32 + this.lo;
  }

  /** int64 that must be a safe integer (dims, versions): values beyond ±2^53 are not meaningful there. */
  int64Number(): number {
    const at = this.pos;
    const v = this.int64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) this.fail(`value ${v} out of range`, at);
    return Number(v);
  }

  int64(): bigint {
    this.readVarintParts();
    return BigInt.asIntN(64, (BigInt(this.hi) << 32n) | BigInt(this.lo));
  }

  uint64(): bigint {
    this.readVarintParts();
    return (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }

  /** int32 and enums: protobuf keeps the low 32 bits (negative values arrive sign-extended). */
  int32(): number {
    this.readVarintParts();
    return this.lo | 0;
  }

  private need(n: number): number {
    const at = this.pos;
    if (n > this.end - at) this.fail(`truncated: field needs ${n} bytes, ${this.end - at} left`, at);
    this.pos += n;
    return at;
  }

  float(): number {
    const at = this.need(4);
    return new DataView(this.buf.buffer, this.buf.byteOffset + at, 4).getFloat32(0, true);
  }

  double(): number {
    const at = this.need(8);
    return new DataView(this.buf.buffer, this.buf.byteOffset + at, 8).getFloat64(0, true);
  }

  /** Start and end (in `buf`) of a length-delimited payload, checked against the message end. */
  lenRange(): { start: number; end: number } {
    const len = this.uint();
    const start = this.need(len);
    return { start, end: start + len };
  }

  /** Payload bytes as a view into `buf`: no copy, so large blobs cost nothing until used. */
  bytes(): Uint8Array {
    const { start, end } = this.lenRange();
    return this.buf.subarray(start, end);
  }

  string(): string {
    return utf8.decode(this.bytes());
  }

  /** A reader for an embedded message, one level deeper. */
  message(): ProtoReader {
    const { start, end } = this.lenRange();
    if (this.depth + 1 > MAX_DEPTH) this.fail(`messages nested deeper than ${MAX_DEPTH}`, start);
    return new ProtoReader(this.file, this.buf, start, end, this.depth + 1, this.base);
  }

  skip(wire: number): void {
    switch (wire) {
      case Wire.Varint:
        this.readVarintParts();
        return;
      case Wire.Fixed64:
        this.need(8);
        return;
      case Wire.Len:
        this.lenRange();
        return;
      case Wire.Fixed32:
        this.need(4);
        return;
      default:
        this.fail(`unsupported wire type ${wire}`);
    }
  }

  /**
   * One occurrence of a repeated scalar field: a packed run when it arrives length-delimited,
   * else a single value (parsers must accept both, whatever the .proto says).
   */
  repeated<T>(wire: number, read: (r: ProtoReader) => T, out: T[]): void {
    if (wire !== Wire.Len) {
      out.push(read(this));
      return;
    }
    const { start, end } = this.lenRange();
    const run = new ProtoReader(this.file, this.buf, start, end, this.depth, this.base);
    while (!run.done) out.push(read(run));
  }
}

/** How one field is stored: the wire type it must arrive with, whether it may also come packed, and the setter. */
export type FieldSpec<T> = readonly [wire: number, apply: (m: T, r: ProtoReader, wire: number) => void, packable?: boolean];
export type FieldSpecs<T> = Readonly<Record<number, FieldSpec<T>>>;

/**
 * Decodes fields into `m` until the reader's end. Fields not in `specs`, or arriving with another
 * wire type, keep their raw bytes (tag included) in `unknownFields` so re-encoding loses nothing.
 * Appends rather than resets, so a message may be fed in several pieces.
 */
export function decodeInto<T extends { unknownFields?: Uint8Array[] }>(r: ProtoReader, m: T, specs: FieldSpecs<T>): T {
  while (!r.done) {
    const at = r.pos;
    const { field, wire } = r.tag();
    const spec = specs[field];
    if (spec !== undefined && (wire === spec[0] || (spec[2] === true && wire === Wire.Len))) {
      spec[1](m, r, wire);
    } else {
      r.skip(wire);
      (m.unknownFields ??= []).push(r.buf.subarray(at, r.pos));
    }
  }
  return m;
}

/** Bytes an encoded message refers to in place (raw_data left in the model file); read only when the output is assembled. */
export interface SourceSlice {
  readonly source: ByteSource;
  readonly offset: number;
  readonly length: number;
}

export type Part = Uint8Array | SourceSlice;

/** Copying blobs larger than this into the current buffer would just duplicate them; they are kept as separate parts. */
const INLINE_LIMIT = 64 * 1024;

/**
 * Builds a message as a list of parts. Nested messages are encoded first and appended with their
 * length, so sizes are known without reading any SourceSlice.
 */
export class ProtoWriter {
  private readonly parts: Part[] = [];
  private buf = new Uint8Array(256);
  private pos = 0;
  private flushedLength = 0;

  get length(): number {
    return this.flushedLength + this.pos;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  private flush(): void {
    if (this.pos === 0) return;
    this.parts.push(this.buf.slice(0, this.pos));
    this.flushedLength += this.pos;
    this.pos = 0;
  }

  private varintParts(lo: number, hi: number): void {
    this.ensure(10);
    while (hi !== 0 || lo > 0x7f) {
      this.buf[this.pos++] = (lo & 0x7f) | 0x80;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    this.buf[this.pos++] = lo;
  }

  /** Any integer as a 64-bit two's-complement varint (negative int32/int64 take 10 bytes, as protobuf does). */
  private varint(v: number | bigint): void {
    if (typeof v === 'number' && v >= 0 && v < TWO_32 && Number.isInteger(v)) {
      this.varintParts(v >>> 0, 0);
      return;
    }
    const u = BigInt.asUintN(64, BigInt(v));
    this.varintParts(Number(u & 0xffffffffn), Number(u >> 32n));
  }

  private tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  /** int32, int64, uint64, enums and bools all share the varint encoding. */
  int(field: number, v: number | bigint): void {
    this.tag(field, Wire.Varint);
    this.varint(v);
  }

  float(field: number, v: number): void {
    this.tag(field, Wire.Fixed32);
    this.ensure(4);
    new DataView(this.buf.buffer).setFloat32(this.pos, v, true);
    this.pos += 4;
  }

  bytes(field: number, v: Part): void {
    this.tag(field, Wire.Len);
    this.varint(v.length);
    this.append(v);
  }

  string(field: number, v: string): void {
    this.bytes(field, utf8Encoder.encode(v));
  }

  message(field: number, sub: ProtoWriter): void {
    this.tag(field, Wire.Len);
    this.varint(sub.length);
    sub.flush();
    for (const p of sub.parts) this.append(p);
  }

  /** Packed varints (int32/int64/uint64 repeated fields). Nothing is written for an empty list, as protobuf does. */
  packedInts(field: number, values: ArrayLike<number | bigint>): void {
    if (values.length === 0) return;
    const body = new ProtoWriter();
    for (let i = 0; i < values.length; i++) body.varint(values[i]);
    this.message(field, body);
  }

  packedFloats(field: number, values: readonly number[]): void {
    if (values.length === 0) return;
    this.bytes(field, new Uint8Array(Float32Array.from(values).buffer));
  }

  packedDoubles(field: number, values: readonly number[]): void {
    if (values.length === 0) return;
    this.bytes(field, new Uint8Array(Float64Array.from(values).buffer));
  }

  /** Bytes already encoded (preserved unknown fields). */
  raw(bytes: Uint8Array): void {
    this.append(bytes);
  }

  private append(p: Part): void {
    if (p instanceof Uint8Array && p.length <= INLINE_LIMIT) {
      this.ensure(p.length);
      this.buf.set(p, this.pos);
      this.pos += p.length;
      return;
    }
    this.flush();
    this.parts.push(p);
    this.flushedLength += p.length;
  }

  /** The encoded message as parts, for callers that stream them to a file. */
  finishParts(): Part[] {
    this.flush();
    return this.parts.slice();
  }

  /** The encoded message in one buffer, reading any SourceSlice it refers to. */
  async finish(): Promise<Uint8Array> {
    const parts = this.finishParts();
    const out = new Uint8Array(this.flushedLength);
    let at = 0;
    for (const p of parts) {
      out.set(p instanceof Uint8Array ? p : await p.source.read(p.offset, p.length), at);
      at += p.length;
    }
    return out;
  }
}
