import { crc32, inflateRawSync } from 'node:zlib';
import { constants as bufferConstants } from 'node:buffer';
import type { ByteReader } from './byteReader';
import type { ByteSource } from './byteSource';
import { formatBytes } from '../../shared/format';
import { ModelFormatError, truncatedReason } from './errors';

/** One file in the archive as the central directory describes it. */
export interface ZipEntry {
  readonly name: string;
  /** 0 = stored, 8 = deflate; anything else is rejected when read. */
  readonly method: number;
  readonly flags: number;
  readonly crc32: number;
  readonly compressedSize: number;
  /** Uncompressed size in bytes. */
  readonly size: number;
  readonly localHeaderOffset: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;
const EOCD_SIZE = 22;
const MAX_COMMENT = 0xffff;
const CENTRAL_FIXED = 46;
const LOCAL_FIXED = 30;
/** Deflate cannot expand data by more than about 1032:1; a larger claim is a lie. */
const MAX_DEFLATE_RATIO = 1032;
/** Bigger directories mean hundreds of thousands of tensors; refuse rather than buffer them. */
const MAX_CENTRAL_DIRECTORY = 256 * 1024 * 1024;
/** Names torch.save() and torch.jit.save() put in a checkpoint's folder; the first entry is one of them. */
const TORCH_ENTRY = /^(?:[^/]+\/)?(data\.pkl|byteorder|version|\.data\/|data\/|constants\.pkl|code\/)/;

function u16(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8);
}

function u32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}

/** 64-bit little-endian value as a number, or Infinity when it cannot be a file offset. */
function u64(b: Uint8Array, o: number): number {
  const hi = u32(b, o + 4);
  if (hi >= 0x200000) return Infinity;
  return hi * 0x100000000 + u32(b, o);
}

/** How far back from the end a missing end record is looked for, to tell data appended after it from a cut. */
const APPENDED_SEARCH = 64 * 1024 * 1024;
const SEARCH_CHUNK = 1024 * 1024;

/**
 * Where an end-of-central-directory record lies further back than the reader looks (past the last
 * 64 KiB, up to APPENDED_SEARCH from the end), if one does: then the archive is whole and data was
 * appended after it. torch writes sizes after each entry's data (a data descriptor), so the entries cannot be walked
 * to the end instead; a checkpoint cut short has no end record anywhere.
 */
async function endRecordFurtherBack(src: ByteSource): Promise<number | undefined> {
  const stop = Math.max(0, src.size - APPENDED_SEARCH);
  // The tail was searched already: look where a record would begin before it.
  const tailStart = Math.max(0, src.size - EOCD_SIZE - MAX_COMMENT);
  if (tailStart === 0) return undefined;
  let end = tailStart + EOCD_SIZE - 1;
  while (end > stop) {
    const start = Math.max(stop, end - SEARCH_CHUNK);
    const bytes = await src.read(start, end - start);
    for (let i = bytes.length - EOCD_SIZE; i >= 0; i--) {
      if (u32(bytes, i) !== SIG_EOCD) continue;
      const cdSize = u32(bytes, i + 12);
      const cdOffset = u32(bytes, i + 16);
      // A ZIP64 archive keeps its directory's place in the ZIP64 record; the signature is enough there.
      if (cdOffset === 0xffffffff || cdSize === 0xffffffff) return start + i;
      // The directory ends where the record (or a ZIP64 record before it) begins, and starts with an entry.
      if (cdOffset + cdSize > start + i) continue;
      if (cdSize === 0 || u32(await src.read(cdOffset, 4), 0) === SIG_CENTRAL) return start + i;
    }
    // Overlap by a record's length so one that straddles two chunks is seen whole.
    end = start + EOCD_SIZE - 1;
    if (start === stop) break;
  }
  return undefined;
}

/**
 * Why a file without an end-of-central-directory record in its last 64 KiB cannot be read. One that
 * begins with a local file header was written as a zip: when the record a zip writer puts last is
 * nowhere, the file was cut short (an interrupted copy or download, a full disk), and the first entry
 * shows what it was; when the record is further back, data was appended after the archive.
 * Undefined when the file does not begin like a zip.
 */
async function missingEndRecord(src: ByteSource): Promise<string | undefined> {
  if (src.size < 4) return undefined;
  const head = await src.read(0, Math.min(src.size, LOCAL_FIXED));
  if (u32(head, 0) !== SIG_LOCAL) return undefined;
  const record = await endRecordFurtherBack(src);
  if (record !== undefined) {
    const after = src.size - record - EOCD_SIZE - u16(await src.read(record, EOCD_SIZE), 20);
    return `the zip archive is followed by ${formatBytes(after)} of other data: its end-of-central-directory record is not in the last 64 KiB, where zip readers look for it; remove what was appended or re-save the file`;
  }
  const evidence = 'no end-of-central-directory record';
  if (head.length < LOCAL_FIXED) return truncatedReason(src.size, "the header of a zip archive's first entry", evidence);
  // The name may itself be cut; what is left of it is enough to recognise torch's layout.
  const nameLength = Math.min(u16(head, 26), src.size - LOCAL_FIXED);
  const name = new TextDecoder('utf-8').decode(await src.read(LOCAL_FIXED, nameLength));
  if (TORCH_ENTRY.test(name)) return truncatedReason(src.size, 'a zip that began as a PyTorch checkpoint', evidence);
  const shown = nameLength < u16(head, 26) || name.length > 80 ? `${name.slice(0, 80)}…` : name;
  return truncatedReason(src.size, `a zip archive whose first entry is '${shown}'`, evidence);
}

type Fail = (reason: string) => never;

/** Where the central directory is, from the end-of-central-directory record (ZIP64's where sizes need it). */
interface CentralDirectory {
  offset: number;
  size: number;
  entryCount: number;
  /** Where the end record starts: the directory must end before it. */
  recordStart: number;
}

async function locateCentralDirectory(src: ByteSource, fail: Fail): Promise<CentralDirectory> {
  if (src.size < EOCD_SIZE) fail((await missingEndRecord(src)) ?? `not a zip archive: ${src.size} bytes is shorter than an end-of-central-directory record`);
  const tailLength = Math.min(src.size, EOCD_SIZE + MAX_COMMENT);
  const tailStart = src.size - tailLength;
  const tail = await src.read(tailStart, tailLength);
  let eocd = -1;
  for (let i = tailLength - EOCD_SIZE; i >= 0; i--) {
    // The comment must fit between the record and the end of the file.
    if (u32(tail, i) === SIG_EOCD && i + EOCD_SIZE + u16(tail, i + 20) <= tailLength) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) fail((await missingEndRecord(src)) ?? 'not a zip archive: no end-of-central-directory record in the last 64 KiB');

  const locatorPos = tailStart + eocd - 20;
  const locator = locatorPos >= 0 ? await src.read(locatorPos, 20) : undefined;
  if (locator && u32(locator, 0) === SIG_ZIP64_LOCATOR) {
    const recordOffset = u64(locator, 8);
    if (recordOffset + 56 > locatorPos) fail(`ZIP64 end-of-central-directory offset ${recordOffset} is outside the file`);
    const rec = await src.read(recordOffset, 56);
    if (u32(rec, 0) !== SIG_ZIP64_EOCD) fail(`no ZIP64 end-of-central-directory record at offset ${recordOffset}`);
    if (u32(rec, 16) !== 0 || u32(rec, 20) !== 0) fail('multi-disk zip archives are not supported');
    return { entryCount: u64(rec, 32), size: u64(rec, 40), offset: u64(rec, 48), recordStart: recordOffset };
  }
  if (u16(tail, eocd + 4) !== 0 || u16(tail, eocd + 6) !== 0) fail('multi-disk zip archives are not supported');
  return { entryCount: u16(tail, eocd + 10), size: u32(tail, eocd + 12), offset: u32(tail, eocd + 16), recordStart: tailStart + eocd };
}

/** The entries of the central directory `cd`, each checked to lie in the data area before the directory. */
function readCentralDirectory(cd: Uint8Array, directory: CentralDirectory, fail: Fail): ZipEntry[] {
  const entries: ZipEntry[] = [];
  const names = new Set<string>();
  const decoder = new TextDecoder('utf-8');
  let p = 0;
  for (let n = 0; n < directory.entryCount; n++) {
    if (p + CENTRAL_FIXED > directory.size || u32(cd, p) !== SIG_CENTRAL) fail(`bad central directory entry ${n} at offset ${directory.offset + p}`);
    const nameLength = u16(cd, p + 28);
    const extraLength = u16(cd, p + 30);
    const end = p + CENTRAL_FIXED + nameLength + extraLength + u16(cd, p + 32);
    if (end > directory.size) fail(`central directory entry ${n} runs past the directory`);
    const name = decoder.decode(cd.subarray(p + CENTRAL_FIXED, p + CENTRAL_FIXED + nameLength));
    const sizes = zip64Sizes(
      cd,
      p + CENTRAL_FIXED + nameLength,
      extraLength,
      name,
      { size: u32(cd, p + 24), compressedSize: u32(cd, p + 20), localHeaderOffset: u32(cd, p + 42) },
      fail,
    );
    if (names.has(name)) fail(`duplicate zip entry '${name}'`);
    names.add(name);
    if (sizes.localHeaderOffset + LOCAL_FIXED + sizes.compressedSize > directory.offset) {
      fail(`zip entry '${name}' (offset ${sizes.localHeaderOffset}, ${sizes.compressedSize} bytes) extends past the data area (${directory.offset} bytes)`);
    }
    entries.push({ name, method: u16(cd, p + 10), flags: u16(cd, p + 8), crc32: u32(cd, p + 16), ...sizes });
    p = end;
  }
  return entries;
}

type EntrySizes = Pick<ZipEntry, 'size' | 'compressedSize' | 'localHeaderOffset'>;

/** An entry's sizes with the ZIP64 extra field applied: 8-byte values for exactly those fields saturated at 0xFFFFFFFF, in this order. */
function zip64Sizes(cd: Uint8Array, start: number, length: number, name: string, sizes: EntrySizes, fail: Fail): EntrySizes {
  const out = { ...sizes };
  const extraEnd = start + length;
  for (let q = start; q + 4 <= extraEnd;) {
    const id = u16(cd, q);
    const len = u16(cd, q + 2);
    if (q + 4 + len > extraEnd) fail(`extra field of '${name}' runs past its entry`);
    if (id === 0x0001) {
      let r = q + 4;
      const take = (): number => {
        if (r + 8 > q + 4 + len) fail(`ZIP64 extra field of '${name}' is too short`);
        const v = u64(cd, r);
        r += 8;
        return v;
      };
      if (out.size === 0xffffffff) out.size = take();
      if (out.compressedSize === 0xffffffff) out.compressedSize = take();
      if (out.localHeaderOffset === 0xffffffff) out.localHeaderOffset = take();
    }
    q += 4 + len;
  }
  return out;
}

/**
 * Read-only ZIP archive over a ByteSource. Only the central directory is read
 * up front; stored entries are then read as byte ranges on demand, so a
 * multi-gigabyte checkpoint costs a few small reads to open.
 */
export class ZipArchive {
  private readonly byName: Map<string, ZipEntry>;
  private readonly dataOffsets = new Map<ZipEntry, number>();

  private constructor(
    readonly src: ByteSource,
    readonly entries: readonly ZipEntry[],
    /** Where the central directory starts: every entry's data must end before it. */
    private readonly dataLimit: number,
  ) {
    this.byName = new Map(entries.map((e) => [e.name, e]));
  }

  static async open(src: ByteSource): Promise<ZipArchive> {
    const fail = (reason: string): never => {
      throw new ModelFormatError(src.name, reason);
    };
    const directory = await locateCentralDirectory(src, fail);
    const { offset, size, entryCount } = directory;
    if (offset + size > directory.recordStart)
      fail(`central directory (offset ${offset}, ${size} bytes) extends past its end record at ${directory.recordStart}`);
    if (size > MAX_CENTRAL_DIRECTORY) fail(`central directory of ${size} bytes is too large`);
    if (entryCount * CENTRAL_FIXED > size) fail(`central directory claims ${entryCount} entries but has only ${size} bytes`);
    const entries = readCentralDirectory(await src.read(offset, size), directory, fail);
    return new ZipArchive(src, entries, offset);
  }

  entry(name: string): ZipEntry | undefined {
    return this.byName.get(name);
  }

  /** Offset of the entry's first data byte; the local header may carry different extra fields than the directory. */
  async dataOffset(entry: ZipEntry): Promise<number> {
    const known = this.dataOffsets.get(entry);
    if (known !== undefined) return known;
    const header = await this.src.read(entry.localHeaderOffset, LOCAL_FIXED);
    if (u32(header, 0) !== SIG_LOCAL) this.fail(`no local header for '${entry.name}' at offset ${entry.localHeaderOffset}`);
    const start = entry.localHeaderOffset + LOCAL_FIXED + u16(header, 26) + u16(header, 28);
    if (start + entry.compressedSize > this.dataLimit) {
      this.fail(`data of '${entry.name}' (offset ${start}, ${entry.compressedSize} bytes) runs into the central directory`);
    }
    this.dataOffsets.set(entry, start);
    return start;
  }

  /**
   * `length` uncompressed bytes of the entry starting at `offset`. Stored
   * entries are read in place; reading a whole entry also checks its CRC.
   */
  async read(entry: ZipEntry, offset = 0, length = entry.size - offset): Promise<Uint8Array> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > entry.size) {
      this.fail(`read of ${length} bytes at ${offset} is outside '${entry.name}' (${entry.size} bytes)`);
    }
    if (entry.flags & 1) this.fail(`'${entry.name}' is encrypted`);
    const whole = offset === 0 && length === entry.size;
    let bytes: Uint8Array;
    if (entry.method === 0) {
      if (entry.compressedSize !== entry.size)
        this.fail(`stored entry '${entry.name}' has different compressed (${entry.compressedSize}) and real (${entry.size}) sizes`);
      bytes = await this.src.read((await this.dataOffset(entry)) + offset, length);
    } else if (entry.method === 8) {
      bytes = (await this.inflate(entry)).subarray(offset, offset + length);
    } else {
      this.fail(`'${entry.name}' uses unsupported compression method ${entry.method}`);
    }
    if (whole) this.checkCrc(entry, crc32(bytes));
    return bytes;
  }

  /**
   * A stored entry's bytes from `from` on, in pieces (undefined for a compressed one, which is
   * inflated whole). Read from its start to its end, the entry is checked against its CRC-32 as the
   * last piece arrives: a caller sees a corrupted entry fail only at its end, so it must not publish
   * anything made of the earlier pieces before then.
   */
  reader(entry: ZipEntry, from = 0): ByteReader | undefined {
    if (entry.method !== 0) return undefined;
    let at = from;
    let crc = 0;
    return {
      next: async (length) => {
        if (at === 0 && length === entry.size) {
          at = length;
          return this.read(entry);
        }
        const bytes = await this.read(entry, at, length);
        if (from === 0) crc = crc32(bytes, crc);
        at += length;
        if (from === 0 && at === entry.size) this.checkCrc(entry, crc);
        return bytes;
      },
    };
  }

  private async inflate(entry: ZipEntry): Promise<Uint8Array> {
    if (entry.size > entry.compressedSize * MAX_DEFLATE_RATIO + 1024 || entry.size > bufferConstants.MAX_LENGTH) {
      this.fail(`'${entry.name}' claims ${entry.size} bytes from ${entry.compressedSize} compressed bytes`);
    }
    const start = await this.dataOffset(entry);
    const packed = await this.src.read(start, entry.compressedSize);
    let out: Uint8Array;
    try {
      // maxOutputLength stops a deflate bomb at the declared size instead of filling memory.
      out = inflateRawSync(packed, { maxOutputLength: Math.max(1, entry.size) });
    } catch (e) {
      return this.fail(`cannot inflate '${entry.name}': ${(e as Error).message}`);
    }
    if (out.length !== entry.size) this.fail(`'${entry.name}' inflates to ${out.length} bytes, directory says ${entry.size}`);
    // A plain Uint8Array like every other read, not a Buffer.
    return new Uint8Array(out.buffer, out.byteOffset, out.length);
  }

  private checkCrc(entry: ZipEntry, crc: number): void {
    if (crc >>> 0 !== entry.crc32) this.fail(`the file is corrupted: CRC mismatch in '${entry.name}'`);
  }

  private fail(reason: string): never {
    throw new ModelFormatError(this.src.name, reason);
  }
}
