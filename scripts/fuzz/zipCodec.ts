import { crc32, deflateRawSync, inflateRawSync } from 'node:zlib';

/*
 * The fuzzer's and the tests' own view of a zip: where every record and field of a
 * well-formed archive sits (to aim mutations), and a writer for whole archives.
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
  /** 0 stored (the default when writing) or 8 deflate. */
  method?: 0 | 8;
}

/** The entries' uncompressed contents, in directory order. */
export function zipContents(bytes: Uint8Array, layout: ZipLayout): ZipContent[] {
  return layout.entries.map((e) => {
    const raw = bytes.subarray(e.dataStart, e.dataEnd);
    return e.method === 8 ? { name: e.name, data: new Uint8Array(inflateRawSync(raw)), method: 8 } : { name: e.name, data: raw, method: 0 };
  });
}

/** An entry's central directory fields, which a test may falsify before they are written. */
export interface CentralFields {
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
  crc: number;
}

export interface ZipWriteOptions {
  /**
   * torch.save's layout (the default): each entry's data aligned to 64 bytes by an 'FB'
   * extra field, and a ZIP64 end record with its locator before the classic end record.
   */
  torchLayout?: boolean;
  /** ZIP64 fields in every header and a saturated classic end record, though nothing needs them. */
  zip64?: boolean;
  comment?: Uint8Array;
  deflate?: (data: Uint8Array) => Uint8Array;
  patchCentral?: (name: string, fields: CentralFields) => void;
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
    this.bytes(Uint8Array.of(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff));
  }
  u64(v: number): void {
    this.u32(v % 2 ** 32);
    this.u32(Math.floor(v / 2 ** 32));
  }
  finish(): Uint8Array {
    const bytes = new Uint8Array(this.length);
    let o = 0;
    for (const p of this.parts) {
      bytes.set(p, o);
      o += p.length;
    }
    return bytes;
  }
}

const MAX32 = 0xffffffff;

/**
 * A whole archive in memory, with correct CRCs, for tests and for reassembling fuzzed
 * entries (so that edited contents get past the checksum); the options fake the layouts
 * and faults the reader must handle.
 */
export function writeZip(entries: readonly ZipContent[], options: ZipWriteOptions = {}): Uint8Array {
  const { torchLayout = true, zip64 = false, comment = new Uint8Array(0), deflate = (d) => new Uint8Array(deflateRawSync(d)) } = options;
  const out = new Out();
  const enc = new TextEncoder();
  const central: { name: Uint8Array; method: number; fields: CentralFields }[] = [];
  for (const e of entries) {
    const name = enc.encode(e.name);
    const method = e.method ?? 0;
    const packed = method === 8 ? deflate(e.data) : e.data;
    const fields: CentralFields = { compressedSize: packed.length, size: e.data.length, localHeaderOffset: out.length, crc: crc32(e.data) >>> 0 };
    const zip64Len = zip64 ? 20 : 0;
    const pad = torchLayout ? (64 - ((out.length + 30 + name.length + zip64Len + 4) % 64)) % 64 : 0;
    out.u32(0x04034b50);
    out.u16(zip64 ? 45 : 20);
    out.u16(0);
    out.u16(method);
    out.u32(0);
    out.u32(fields.crc);
    out.u32(zip64 ? MAX32 : packed.length);
    out.u32(zip64 ? MAX32 : e.data.length);
    out.u16(name.length);
    out.u16(zip64Len + (torchLayout ? 4 + pad : 0));
    out.bytes(name);
    if (zip64) {
      out.u16(1);
      out.u16(16);
      out.u64(e.data.length);
      out.u64(packed.length);
    }
    if (torchLayout) {
      out.u16(0x4246);
      out.u16(pad);
      out.bytes(new Uint8Array(pad).fill(0x5a));
    }
    out.bytes(packed);
    options.patchCentral?.(e.name, fields);
    central.push({ name, method, fields });
  }
  const cdOffset = out.length;
  for (const { name, method, fields } of central) {
    // Values that do not fit in 32 bits go to the ZIP64 extra field, as real writers do.
    const big = zip64 || fields.compressedSize >= MAX32 || fields.size >= MAX32 || fields.localHeaderOffset >= MAX32;
    out.u32(0x02014b50);
    out.u16(big ? 45 : 20);
    out.u16(big ? 45 : 20);
    out.u16(0);
    out.u16(method);
    out.u32(0);
    out.u32(fields.crc);
    out.u32(big ? MAX32 : fields.compressedSize);
    out.u32(big ? MAX32 : fields.size);
    out.u16(name.length);
    out.u16(big ? 28 : 0);
    out.u16(0);
    out.u16(0);
    out.u16(0);
    out.u32(0);
    out.u32(big ? MAX32 : fields.localHeaderOffset);
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
  if (zip64 || torchLayout) {
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
  }
  out.u32(0x06054b50);
  out.u16(0);
  out.u16(0);
  out.u16(zip64 ? 0xffff : Math.min(central.length, 0xffff));
  out.u16(zip64 ? 0xffff : Math.min(central.length, 0xffff));
  out.u32(zip64 ? MAX32 : cdSize);
  out.u32(zip64 ? MAX32 : cdOffset);
  out.u16(comment.length);
  out.bytes(comment);
  return out.finish();
}
