import { crc32 } from 'node:zlib';
import type { ByteSink } from './atomicFile';

/** A record as its local header placed it. */
export interface ZipRecord {
  name: Uint8Array;
  crc: number;
  size: number;
  /** Of its local header. */
  offset: number;
  dataStart: number;
}

const MAX32 = 0xffffffff;
/** Where a local header holds its record's CRC-32. */
const CRC_AT = 14;
/** torch aligns record data to 64 bytes so that storages can be memory-mapped. */
const ALIGN = 64;

function u16(v: DataView, at: number, x: number) {
  v.setUint16(at, x, true);
}
function u32(v: DataView, at: number, x: number) {
  v.setUint32(at, x, true);
}
function u64(v: DataView, at: number, x: number) {
  v.setBigUint64(at, BigInt(x), true);
}

/**
 * Writes an uncompressed ("stored") zip archive record by record, as PyTorch lays
 * its checkpoints out: data aligned to 64 bytes, ZIP64 fields where sizes or offsets need them.
 */
export class ZipWriter {
  private readonly entries: ZipRecord[] = [];

  constructor(private readonly sink: ByteSink) {}

  /** A record of `data`; `crc` may be given when it was computed ahead, off the writing path. */
  async add(name: string, data: Uint8Array, crc = crc32(data)): Promise<void> {
    const record = await this.begin(name, data.length, crc);
    await this.sink.write(data);
    await this.end(record, crc);
  }

  /**
   * Starts a record of `size` bytes, which the caller then writes to the sink, in pieces if it
   * likes, before `end`. The local header goes first with `crc` when it is known, with 0 when the
   * bytes are still to come; `end` puts the real one in.
   */
  async begin(name: string, size: number, crc = 0): Promise<ZipRecord> {
    const nameBytes = new TextEncoder().encode(name);
    const offset = this.sink.position;
    const zip64 = size >= MAX32 || offset >= MAX32;
    const zip64Len = zip64 ? 20 : 0;
    const headerLen = 30 + nameBytes.length + zip64Len;
    const padLen = (ALIGN - ((offset + headerLen + 4) % ALIGN)) % ALIGN;
    const extraLen = zip64Len + 4 + padLen;
    const header = new Uint8Array(30 + nameBytes.length + extraLen);
    const v = new DataView(header.buffer);
    u32(v, 0, 0x04034b50);
    u16(v, 4, zip64 ? 45 : 20);
    u16(v, 6, 0x0800); // names are UTF-8
    u16(v, 8, 0); // stored
    u32(v, 10, 0); // time, date
    u32(v, CRC_AT, crc);
    u32(v, 18, zip64 ? MAX32 : size);
    u32(v, 22, zip64 ? MAX32 : size);
    u16(v, 26, nameBytes.length);
    u16(v, 28, extraLen);
    header.set(nameBytes, 30);
    let at = 30 + nameBytes.length;
    if (zip64) {
      u16(v, at, 0x0001);
      u16(v, at + 2, 16);
      u64(v, at + 4, size);
      u64(v, at + 12, size);
      at += 20;
    }
    // Padding extra field (id 'FB'), as torch writes, so the data starts aligned.
    u16(v, at, 0x4246);
    u16(v, at + 2, padLen);
    await this.sink.write(header);
    return { name: nameBytes, crc, size, offset, dataStart: this.sink.position };
  }

  /** Ends the record `begin` started, once its bytes are written; `crc` is theirs. */
  async end(record: ZipRecord, crc: number): Promise<void> {
    const written = this.sink.position - record.dataStart;
    if (written !== record.size) throw new Error(`zip record of ${record.size} bytes got ${written}`);
    if (crc !== record.crc) {
      const bytes = new Uint8Array(4);
      u32(new DataView(bytes.buffer), 0, crc);
      await this.sink.patch(record.offset + CRC_AT, bytes);
    }
    this.entries.push({ ...record, crc });
  }

  async finish(): Promise<void> {
    const cdStart = this.sink.position;
    for (const e of this.entries) {
      const needs = [e.size >= MAX32, e.size >= MAX32, e.offset >= MAX32];
      const zip64Len = needs.some(Boolean) ? 4 + 8 * needs.filter(Boolean).length : 0;
      const rec = new Uint8Array(46 + e.name.length + zip64Len);
      const v = new DataView(rec.buffer);
      u32(v, 0, 0x02014b50);
      u16(v, 4, zip64Len ? 45 : 20);
      u16(v, 6, zip64Len ? 45 : 20);
      u16(v, 8, 0x0800);
      u16(v, 10, 0);
      u32(v, 12, 0);
      u32(v, 16, e.crc);
      u32(v, 20, needs[0] ? MAX32 : e.size);
      u32(v, 24, needs[1] ? MAX32 : e.size);
      u16(v, 28, e.name.length);
      u16(v, 30, zip64Len);
      u32(v, 42, needs[2] ? MAX32 : e.offset);
      rec.set(e.name, 46);
      if (zip64Len) {
        let at = 46 + e.name.length;
        u16(v, at, 0x0001);
        u16(v, at + 2, zip64Len - 4);
        at += 4;
        if (needs[0]) {
          u64(v, at, e.size);
          at += 8;
        }
        if (needs[1]) {
          u64(v, at, e.size);
          at += 8;
        }
        if (needs[2]) u64(v, at, e.offset);
      }
      await this.sink.write(rec);
    }
    const cdEnd = this.sink.position;
    const cdSize = cdEnd - cdStart;
    const count = this.entries.length;
    if (count >= 0xffff || cdStart >= MAX32 || cdSize >= MAX32) {
      const z = new Uint8Array(56 + 20);
      const v = new DataView(z.buffer);
      u32(v, 0, 0x06064b50);
      u64(v, 4, 44);
      u16(v, 12, 45);
      u16(v, 14, 45);
      u64(v, 24, count);
      u64(v, 32, count);
      u64(v, 40, cdSize);
      u64(v, 48, cdStart);
      u32(v, 56, 0x07064b50);
      u64(v, 64, cdEnd);
      u32(v, 72, 1);
      await this.sink.write(z);
    }
    const end = new Uint8Array(22);
    const v = new DataView(end.buffer);
    u32(v, 0, 0x06054b50);
    u16(v, 8, Math.min(count, 0xffff));
    u16(v, 10, Math.min(count, 0xffff));
    u32(v, 12, Math.min(cdSize, MAX32));
    u32(v, 16, Math.min(cdStart, MAX32));
    await this.sink.write(end);
  }
}
