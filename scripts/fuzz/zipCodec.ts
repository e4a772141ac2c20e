import { crc32, inflateRawSync } from 'node:zlib';

/*
 * The fuzzer's own view of a zip: where every record and field of a well-formed
 * archive sits (to aim mutations), and a writer to reassemble edited entries with
 * correct CRCs, so that mutations of the contents get past the checksum.
 */

export interface ZipRecordEntry {
  name: string;
  method: number;
  /** Offset of the central directory record. */
  central: number;
  local: number;
  dataStart: number;
  dataEnd: number;
}

export interface ZipLayout {
  entries: ZipRecordEntry[];
  cdOffset: number;
  cdEnd: number;
  zip64Record?: number;
  zip64Locator?: number;
  eocd: number;
}

const u16 = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8);
const u32 = (b: Uint8Array, o: number) => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
const u64 = (b: Uint8Array, o: number) => u32(b, o) + u32(b, o + 4) * 2 ** 32;

/** Layout of a well-formed archive; undefined when `bytes` is not one (mutations then stay byte-level). */
export function parseZip(bytes: Uint8Array): ZipLayout | undefined {
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 0xffff); i--) {
    if (u32(bytes, i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) return undefined;
  let count = u16(bytes, eocd + 10);
  let cdSize = u32(bytes, eocd + 12);
  let cdOffset = u32(bytes, eocd + 16);
  let zip64Record: number | undefined;
  let zip64Locator: number | undefined;
  if (eocd >= 20 && u32(bytes, eocd - 20) === 0x07064b50) {
    zip64Locator = eocd - 20;
    zip64Record = u64(bytes, zip64Locator + 8);
    if (zip64Record + 56 > bytes.length || u32(bytes, zip64Record) !== 0x06064b50) return undefined;
    count = u64(bytes, zip64Record + 32);
    cdSize = u64(bytes, zip64Record + 40);
    cdOffset = u64(bytes, zip64Record + 48);
  }
  if (cdOffset + cdSize > bytes.length) return undefined;
  const entries: ZipRecordEntry[] = [];
  let p = cdOffset;
  const dec = new TextDecoder();
  for (let n = 0; n < count; n++) {
    if (p + 46 > bytes.length || u32(bytes, p) !== 0x02014b50) return undefined;
    const method = u16(bytes, p + 10);
    let compressed = u32(bytes, p + 20);
    let size = u32(bytes, p + 24);
    const nameLen = u16(bytes, p + 28);
    const extraLen = u16(bytes, p + 30);
    const commentLen = u16(bytes, p + 32);
    let local = u32(bytes, p + 42);
    const name = dec.decode(bytes.subarray(p + 46, p + 46 + nameLen));
    for (let q = p + 46 + nameLen; q + 4 <= p + 46 + nameLen + extraLen; q += 4 + u16(bytes, q + 2)) {
      if (u16(bytes, q) !== 1) continue;
      let r = q + 4;
      const take = () => {
        r += 8;
        return u64(bytes, r - 8);
      };
      if (size === 0xffffffff) size = take();
      if (compressed === 0xffffffff) compressed = take();
      if (local === 0xffffffff) local = take();
    }
    if (local + 30 > bytes.length || u32(bytes, local) !== 0x04034b50) return undefined;
    const dataStart = local + 30 + u16(bytes, local + 26) + u16(bytes, local + 28);
    entries.push({ name, method, central: p, local, dataStart, dataEnd: dataStart + compressed });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return { entries, cdOffset, cdEnd: cdOffset + cdSize, zip64Record, zip64Locator, eocd };
}

export interface ZipContent {
  name: string;
  data: Uint8Array;
  method: 0 | 8;
}

/** The entries' uncompressed contents, in directory order. */
export function zipContents(bytes: Uint8Array, layout: ZipLayout): ZipContent[] {
  return layout.entries.map((e) => {
    const raw = bytes.subarray(e.dataStart, e.dataEnd);
    return e.method === 8 ? { name: e.name, data: new Uint8Array(inflateRawSync(raw)), method: 8 } : { name: e.name, data: raw, method: 0 };
  });
}

class Out {
  readonly parts: Uint8Array[] = [];
  length = 0;
  bytes(b: Uint8Array): void {
    this.parts.push(b);
    this.length += b.length;
  }
  u16(v: number): void {
    this.bytes(Uint8Array.of(v & 0xff, (v >>> 8) & 0xff));
  }
  u32(v: number): void {
    this.bytes(Uint8Array.of(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff));
  }
  u64(v: number): void {
    this.u32(v % 2 ** 32);
    this.u32(Math.floor(v / 2 ** 32));
  }
}

/**
 * Writes entries as torch.save does: stored (or deflated) data aligned to 64 bytes by
 * an 'FB' extra field, then the directory, a ZIP64 end record with its locator, and the
 * classic end record.
 */
export function writeZip(entries: readonly ZipContent[], deflate: (data: Uint8Array) => Uint8Array): Uint8Array {
  const out = new Out();
  const enc = new TextEncoder();
  const central: { name: Uint8Array; method: number; crc: number; packed: number; size: number; local: number }[] = [];
  for (const e of entries) {
    const name = enc.encode(e.name);
    const packed = e.method === 8 ? deflate(e.data) : e.data;
    const local = out.length;
    const pad = (64 - ((local + 30 + name.length + 4) % 64)) % 64;
    const crc = crc32(e.data) >>> 0;
    out.u32(0x04034b50);
    out.u16(20);
    out.u16(0);
    out.u16(e.method);
    out.u32(0);
    out.u32(crc);
    out.u32(packed.length);
    out.u32(e.data.length);
    out.u16(name.length);
    out.u16(4 + pad);
    out.bytes(name);
    out.u16(0x4246);
    out.u16(pad);
    out.bytes(new Uint8Array(pad).fill(0x5a));
    out.bytes(packed);
    central.push({ name, method: e.method, crc, packed: packed.length, size: e.data.length, local });
  }
  const cdOffset = out.length;
  for (const c of central) {
    out.u32(0x02014b50);
    out.u16(20);
    out.u16(20);
    out.u16(0);
    out.u16(c.method);
    out.u32(0);
    out.u32(c.crc);
    out.u32(c.packed);
    out.u32(c.size);
    out.u16(c.name.length);
    out.u16(0);
    out.u16(0);
    out.u16(0);
    out.u16(0);
    out.u32(0);
    out.u32(c.local);
    out.bytes(c.name);
  }
  const cdSize = out.length - cdOffset;
  const record = out.length;
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
  out.u64(record);
  out.u32(1);
  out.u32(0x06054b50);
  out.u16(0);
  out.u16(0);
  out.u16(Math.min(central.length, 0xffff));
  out.u16(Math.min(central.length, 0xffff));
  out.u32(cdSize);
  out.u32(cdOffset);
  out.u16(0);
  const bytes = new Uint8Array(out.length);
  let o = 0;
  for (const p of out.parts) {
    bytes.set(p, o);
    o += p.length;
  }
  return bytes;
}
