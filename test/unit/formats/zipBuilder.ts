import { crc32, deflateRawSync } from 'node:zlib';

/** A minimal zip writer for tests: stored or deflated entries, optionally with ZIP64 records. */
export interface BuildEntry {
  name: string;
  data: Uint8Array;
  /** 0 stored (default) or 8 deflate. */
  method?: 0 | 8;
}

export interface BuildOptions {
  /** Write ZIP64 extra fields, end record and locator even though nothing needs them. */
  zip64?: boolean;
  comment?: Uint8Array;
  /** Rewrites each central directory entry's fields before it is written (to fake sizes). */
  patchCentral?: (name: string, fields: CentralFields) => void;
}

export interface CentralFields {
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
  crc: number;
}

class Out {
  private readonly parts: Uint8Array[] = [];
  length = 0;
  bytes(b: Uint8Array): void {
    this.parts.push(b);
    this.length += b.length;
  }
  u16(v: number): void {
    this.bytes(Uint8Array.of(v & 0xff, (v >>> 8) & 0xff));
  }
  u32(v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    this.bytes(b);
  }
  u64(v: number): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
    this.bytes(b);
  }
  finish(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

export function buildZip(entries: readonly BuildEntry[], opts: BuildOptions = {}): Uint8Array {
  const out = new Out();
  const enc = new TextEncoder();
  const central: { name: Uint8Array; method: number; fields: CentralFields }[] = [];
  for (const e of entries) {
    const name = enc.encode(e.name);
    const method = e.method ?? 0;
    const packed = method === 8 ? deflateRawSync(e.data) : e.data;
    const fields: CentralFields = { compressedSize: packed.length, size: e.data.length, localHeaderOffset: out.length, crc: crc32(e.data) >>> 0 };
    out.u32(0x04034b50);
    out.u16(opts.zip64 ? 45 : 20);
    out.u16(0);
    out.u16(method);
    out.u32(0);
    out.u32(fields.crc);
    out.u32(opts.zip64 ? 0xffffffff : packed.length);
    out.u32(opts.zip64 ? 0xffffffff : e.data.length);
    out.u16(name.length);
    out.u16(opts.zip64 ? 20 : 0);
    out.bytes(name);
    if (opts.zip64) {
      out.u16(1);
      out.u16(16);
      out.u64(e.data.length);
      out.u64(packed.length);
    }
    out.bytes(packed);
    opts.patchCentral?.(e.name, fields);
    central.push({ name, method, fields });
  }
  const cdOffset = out.length;
  for (const { name, method, fields } of central) {
    out.u32(0x02014b50);
    out.u16(45);
    out.u16(opts.zip64 ? 45 : 20);
    out.u16(0);
    out.u16(method);
    out.u32(0);
    out.u32(fields.crc);
    // Sizes that do not fit in 32 bits must go to the ZIP64 extra field, as real writers do.
    const big = opts.zip64 || fields.compressedSize >= 0xffffffff || fields.size >= 0xffffffff || fields.localHeaderOffset >= 0xffffffff;
    out.u32(big ? 0xffffffff : fields.compressedSize);
    out.u32(big ? 0xffffffff : fields.size);
    out.u16(name.length);
    out.u16(big ? 28 : 0);
    out.u16(0);
    out.u16(0);
    out.u16(0);
    out.u32(0);
    out.u32(big ? 0xffffffff : fields.localHeaderOffset);
    out.bytes(name);
    if (big) {
      out.u16(1);
      out.u16(24);
      out.u64(fields.size);
      out.u64(fields.compressedSize);
      out.u64(fields.localHeaderOffset);
    }
  }
  const cdSize = out.length - cdOffset;
  if (opts.zip64) {
    const recordOffset = out.length;
    out.u32(0x06064b50);
    out.u64(44);
    out.u16(45);
    out.u16(45);
    out.u32(0);
    out.u32(0);
    out.u64(central.length);
    out.u64(central.length);
    out.u64(cdSize);
    out.u64(cdOffset);
    out.u32(0x07064b50);
    out.u32(0);
    out.u64(recordOffset);
    out.u32(1);
  }
  const comment = opts.comment ?? new Uint8Array(0);
  out.u32(0x06054b50);
  out.u16(0);
  out.u16(0);
  out.u16(opts.zip64 ? 0xffff : central.length);
  out.u16(opts.zip64 ? 0xffff : central.length);
  out.u32(opts.zip64 ? 0xffffffff : cdSize);
  out.u32(opts.zip64 ? 0xffffffff : cdOffset);
  out.u16(comment.length);
  out.bytes(comment);
  return out.finish();
}
