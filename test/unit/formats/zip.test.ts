import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileByteSource, MemoryByteSource, type ByteSource } from '../../../src/core/formats/byteSource';
import { ModelFormatError } from '../../../src/core/formats/errors';
import { ZipArchive } from '../../../src/core/formats/zip';
import { formatBytes } from '../../../src/shared/format';
import { writeZip, type ZipContent, type ZipWriteOptions } from '../../../scripts/fuzz/zipCodec';

/** A zip as a generic writer makes it: no alignment padding, no ZIP64 records unless asked. */
const plainZip = (entries: readonly ZipContent[], options: ZipWriteOptions = {}) => writeZip(entries, { torchLayout: false, ...options });

const MODELS = join(__dirname, '../../fixtures/models');
const enc = new TextEncoder();

function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const ENTRIES: ZipContent[] = [
  { name: 'archive/data.pkl', data: enc.encode('pickle bytes '.repeat(20)) },
  { name: 'archive/data/0', data: randomBytes(4096, 1) },
  { name: 'archive/data/1', data: new Uint8Array(20000).fill(3), method: 8 },
  { name: 'archive/version', data: enc.encode('3\n') },
];

/** A ByteSource that counts what it is asked for, to prove lazy and bounded reading. */
class CountingSource implements ByteSource {
  bytesRead = 0;
  largestRead = 0;
  constructor(private readonly inner: ByteSource) {}
  get name(): string {
    return this.inner.name;
  }
  get size(): number {
    return this.inner.size;
  }
  read(offset: number, length: number): Promise<Uint8Array> {
    this.bytesRead += length;
    this.largestRead = Math.max(this.largestRead, length);
    return this.inner.read(offset, length);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

async function expectZipError(bytes: Uint8Array, pattern: RegExp): Promise<void> {
  const err = await (async () => {
    const zip = await ZipArchive.open(new MemoryByteSource('bad.zip', bytes));
    for (const e of zip.entries) await zip.read(e);
  })().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ModelFormatError);
  expect((err as ModelFormatError).file).toBe('bad.zip');
  expect((err as Error).message).toMatch(pattern);
}

async function readAll(bytes: Uint8Array): Promise<Map<string, Uint8Array>> {
  const zip = await ZipArchive.open(new MemoryByteSource('t.zip', bytes));
  const out = new Map<string, Uint8Array>();
  for (const e of zip.entries) out.set(e.name, await zip.read(e));
  return out;
}

describe('ZipArchive', () => {
  it('reads stored and deflated entries back exactly', async () => {
    const got = await readAll(plainZip(ENTRIES));
    expect([...got.keys()]).toEqual(ENTRIES.map((e) => e.name));
    for (const e of ENTRIES) expect(got.get(e.name)).toEqual(e.data);
  });

  it('reads ZIP64 records and extra fields', async () => {
    const bytes = plainZip(ENTRIES, { zip64: true });
    const zip = await ZipArchive.open(new MemoryByteSource('t.zip', bytes));
    expect(zip.entries.map((e) => [e.name, e.size])).toEqual(ENTRIES.map((e) => [e.name, e.data.length]));
    for (const e of ENTRIES) expect(await zip.read(zip.entry(e.name)!)).toEqual(e.data);
  });

  it('finds the end record behind an archive comment', async () => {
    const got = await readAll(plainZip(ENTRIES, { comment: enc.encode('x'.repeat(65535)) }));
    expect(got.get('archive/data/0')).toEqual(ENTRIES[1].data);
  });

  it('does not search for the end record further back than 64 KiB', async () => {
    const zip = plainZip(ENTRIES);
    const padded = new Uint8Array(zip.length + 70000);
    padded.set(zip);
    await expectZipError(
      padded,
      /^bad\.zip: the zip archive is followed by 68\.4 KiB of other data: its end-of-central-directory record is not in the last 64 KiB, where zip readers look for it; remove what was appended or re-save the file$/,
    );
  });

  it('calls a zip cut short truncated, and says what its first entry shows it was', async () => {
    const zip = plainZip(ENTRIES);
    const cut = zip.subarray(0, Math.floor(zip.length * 0.6));
    await expectZipError(
      cut,
      new RegExp(
        `^bad\\.zip: the file is truncated: it ends at ${formatBytes(cut.length).replace('.', '\\.')}, inside a zip that began as a PyTorch checkpoint \\(no end-of-central-directory record\\); re-save or re-download it$`,
      ),
    );
    // Cut inside the first entry's header, and a zip of something else.
    await expectZipError(
      zip.subarray(0, 20),
      /^bad\.zip: the file is truncated: it ends at 20 B, inside the header of a zip archive's first entry \(no end-of-central-directory record\)/,
    );
    const other = plainZip([{ name: 'notes.txt', data: new Uint8Array(5000) }]);
    await expectZipError(
      other.subarray(0, 3000),
      /^bad\.zip: the file is truncated: it ends at 2\.9 KiB, inside a zip archive whose first entry is 'notes\.txt' \(no end-of-central-directory record\)/,
    );
    // No local header first: not a zip that was cut, and the reader says what it looked for.
    await expectZipError(new Uint8Array(100), /^bad\.zip: not a zip archive: no end-of-central-directory record in the last 64 KiB$/);
  });

  it('reads ranges of a stored entry in place, touching only those bytes', async () => {
    const src = new CountingSource(new MemoryByteSource('t.zip', plainZip(ENTRIES)));
    const zip = await ZipArchive.open(src);
    const before = src.bytesRead;
    const part = await zip.read(zip.entry('archive/data/0')!, 1000, 16);
    expect(part).toEqual(ENTRIES[1].data.subarray(1000, 1016));
    // The local header (30 bytes) plus the 16 bytes asked for.
    expect(src.bytesRead - before).toBe(30 + 16);
    await expect(zip.read(zip.entry('archive/data/0')!, 4090, 16)).rejects.toThrow(/outside 'archive\/data\/0'/);
  });

  it('opens a real torch.save archive and verifies every entry checksum', async () => {
    const src = new CountingSource(await FileByteSource.open(join(MODELS, 'repvgg_tiny_train.pth')));
    try {
      const zip = await ZipArchive.open(src);
      // Opening reads the tail and the directory only.
      expect(src.bytesRead).toBeLessThan(src.size / 2);
      const names = zip.entries.map((e) => e.name);
      expect(names[0]).toBe('repvgg_tiny_train/data.pkl');
      expect(names).toContain('repvgg_tiny_train/version');
      expect(names.filter((n) => n.startsWith('repvgg_tiny_train/data/')).length).toBe(96);
      for (const e of zip.entries) {
        expect(e.method).toBe(0);
        // torch aligns tensor data to 64 bytes.
        if (e.name.includes('/data/')) expect((await zip.dataOffset(e)) % 64).toBe(0);
        expect((await zip.read(e)).length).toBe(e.size);
      }
    } finally {
      await src.close();
    }
  });

  it('detects a flipped byte in stored data through the CRC', async () => {
    const bytes = plainZip(ENTRIES);
    const zip = await ZipArchive.open(new MemoryByteSource('t.zip', bytes));
    const offset = await zip.dataOffset(zip.entry('archive/data/0')!);
    const bad = bytes.slice();
    bad[offset + 100] ^= 0x40;
    await expectZipError(bad, /CRC mismatch in 'archive\/data\/0'/);
  });

  it('rejects a directory that claims a 100 GB entry without allocating it', async () => {
    const huge = 100 * 2 ** 30;
    const bytes = plainZip(ENTRIES, {
      patchCentral: (name, f) => {
        if (name === 'archive/data/0') {
          f.size = huge;
          f.compressedSize = huge;
        }
      },
    });
    const src = new CountingSource(new MemoryByteSource('bad.zip', bytes));
    const before = process.memoryUsage().arrayBuffers;
    const err = await ZipArchive.open(src).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFormatError);
    expect((err as Error).message).toMatch(/'archive\/data\/0' \(offset \d+, 107374182400 bytes\) extends past the data area/);
    expect(src.largestRead).toBeLessThanOrEqual(bytes.length);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 2 ** 20);
  });

  it('rejects a deflated entry that claims more than deflate can produce', async () => {
    const bytes = plainZip(ENTRIES, {
      patchCentral: (name, f) => {
        if (name === 'archive/data/1') f.size = 2 ** 40;
      },
    });
    await expectZipError(bytes, /'archive\/data\/1' claims 1099511627776 bytes from \d+ compressed bytes/);
  });

  it('stops inflating at the declared size (deflate bomb)', async () => {
    const bytes = plainZip(ENTRIES, {
      patchCentral: (name, f) => {
        if (name === 'archive/data/1') f.size = 100;
      },
    });
    await expectZipError(bytes, /cannot inflate 'archive\/data\/1'|inflates to/);
  });

  it('rejects overlapping local headers, bad signatures and duplicate names', async () => {
    const dup = plainZip([ENTRIES[0], { ...ENTRIES[1], name: ENTRIES[0].name }]);
    await expectZipError(dup, /duplicate zip entry 'archive\/data.pkl'/);
    const moved = plainZip(ENTRIES, {
      patchCentral: (name, f) => {
        if (name === 'archive/version') f.localHeaderOffset = 5;
      },
    });
    await expectZipError(moved, /no local header for 'archive\/version' at offset 5/);
  });

  it('gives a ModelFormatError for every truncation of a real archive', async () => {
    const bytes = new Uint8Array(readFileSync(join(MODELS, 'repvgg_tiny_train.pth')));
    const started = Date.now();
    for (let len = 0; len < bytes.length; len += 997) {
      await expectZipError(bytes.subarray(0, len), /./);
    }
    // A few hundred attempts; each must fail fast, not scan or hang.
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('survives every flipped byte of the directory area with data or a ModelFormatError', async () => {
    const bytes = plainZip(ENTRIES, { zip64: true });
    const zip = await ZipArchive.open(new MemoryByteSource('t.zip', bytes));
    const cdStart = Math.min(...zip.entries.map((e) => e.localHeaderOffset + e.compressedSize));
    let errors = 0;
    for (let i = cdStart; i < bytes.length; i++) {
      const bad = bytes.slice();
      bad[i] ^= 0xff;
      try {
        await readAll(bad);
      } catch (e) {
        expect(e).toBeInstanceOf(ModelFormatError);
        errors++;
      }
    }
    expect(errors).toBeGreaterThan(0);
  });
});

describe('ZipArchive.reader: a stored entry in pieces', () => {
  /** The zip of ENTRIES with one byte of archive/data/0 flipped, its CRC left as it was. */
  function corrupted(): Uint8Array {
    const bytes = plainZip(ENTRIES);
    const data = ENTRIES[1].data;
    const at = Buffer.from(bytes).indexOf(Buffer.from(data.subarray(0, 64)));
    bytes[at + 3000] ^= 0x01;
    return bytes;
  }

  const pieces = async (zip: ZipArchive, name: string, sizes: number[], from = 0) => {
    const reader = zip.reader(zip.entry(name)!, from)!;
    const out: Uint8Array[] = [];
    for (const n of sizes) out.push(await reader.next(n));
    return Buffer.concat(out);
  };

  it('gives the bytes in order, whatever the piece sizes', async () => {
    const zip = await ZipArchive.open(new MemoryByteSource('t.zip', plainZip(ENTRIES)));
    expect(await pieces(zip, 'archive/data/0', [1000, 1, 3000, 95])).toEqual(Buffer.from(ENTRIES[1].data));
    expect(await pieces(zip, 'archive/data/0', [4096])).toEqual(Buffer.from(ENTRIES[1].data));
    expect(await pieces(zip, 'archive/data/0', [96], 4000)).toEqual(Buffer.from(ENTRIES[1].data.subarray(4000)));
  });

  it('checks the CRC-32 as the last piece arrives: a corrupted entry fails there, not before', async () => {
    const zip = await ZipArchive.open(new MemoryByteSource('bad.zip', corrupted()));
    const reader = zip.reader(zip.entry('archive/data/0')!)!;
    await reader.next(2048);
    await reader.next(2000);
    const error = await reader.next(48).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModelFormatError);
    expect((error as Error).message).toBe("bad.zip: the file is corrupted: CRC mismatch in 'archive/data/0'");
    // Read whole in one piece, the same.
    await expect(pieces(zip, 'archive/data/0', [4096])).rejects.toThrow('CRC mismatch');
  });

  it('does not check a read that starts inside the entry (it never sees all of it)', async () => {
    const zip = await ZipArchive.open(new MemoryByteSource('bad.zip', corrupted()));
    expect((await pieces(zip, 'archive/data/0', [2096], 2000)).length).toBe(2096);
  });

  it('has no reader for a deflated entry, which is inflated whole', async () => {
    const zip = await ZipArchive.open(new MemoryByteSource('t.zip', plainZip(ENTRIES)));
    expect(zip.reader(zip.entry('archive/data/1')!)).toBeUndefined();
  });
});
